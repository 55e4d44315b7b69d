"""The walk of one export through its time windows: the one owner of where it goes next.

A time-based export is walked page by page: which ``start_time`` and page size to send
(a probe when a full second must be re-asked, a smaller page after a timeout), which ids of
the boundary second were already emitted, and when the walk is over. All of it lives here,
in one object per run of a stream. ``next_request`` asks where the walk stands;
``shrink_page`` and ``advance`` change it. The export's loop (``client.py``) asks for a
request, sends it, and hands the decoded answer back with the request it answers; nothing
else is remembered between calls, so no order of calls can be got wrong. The rules
themselves stay pure, in ``pages.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_zendesk_ticket_events.pages import Boundary, ExportPage, PagePlan, plan_page

if TYPE_CHECKING:
    from tap_zendesk_ticket_events.page_size import AdaptivePageSize


@dataclass(frozen=True)
class PageRequest:
    """One export request, as it goes out: its query, and whether it re-asks a full second."""

    start_time: int
    per_page: int
    sideload: bool
    probe: bool = False

    def params(self) -> dict[str, Any]:
        """The query of the request (the export's own parameters, not the auth's)."""
        params: dict[str, Any] = {"start_time": self.start_time, "per_page": self.per_page}
        if self.sideload:
            params["include"] = "comment_events"
        return params


@dataclass(frozen=True)
class Step:
    """What one answered page did: its plan, and the page size it raised, if it did."""

    plan: PagePlan
    raised_to: int | None = None
    """The new page size when this good page ended a run that earns a bigger one."""


class ExportWalk:
    """Where one export stands, and where it goes next."""

    def __init__(
        self,
        start_time: int,
        page_size: AdaptivePageSize,
        *,
        end_before: int | None,
        sideload: bool,
    ) -> None:
        """Start at ``start_time``; ``page_size`` is written by this walk alone.

        It is halved by ``shrink_page`` and raised by ``advance`` after a run of good pages.
        """
        self._page_size = page_size
        self.end_before = end_before
        self.sideload = sideload
        self._next_start: int | None = start_time
        self._probe: int | None = None
        self._boundary = Boundary(start_time)

    def next_request(self) -> PageRequest | None:
        """The request to send now; None once the export is over (its end, ``end_date``, a stall)."""
        if self._next_start is None:
            return None
        per_page = self._probe or self._page_size.current
        return PageRequest(self._next_start, per_page, self.sideload, probe=self._probe is not None)

    def shrink_page(self) -> PageRequest | None:
        """A page timed out: halve it; the request to retry it with, None at the floor (a failure then).

        A smaller page settles a full second as well as a probe would, so a probe is dropped.
        """
        if not self._page_size.shrink():
            return None
        self._probe = None
        return self.next_request()

    def advance(self, request: PageRequest, page: ExportPage) -> Step:
        """Plan the page that answered ``request`` (the rules of ``pages.py``); move on to its plan.

        Past the export's end (or a stall) ``next_request`` is None.
        """
        plan = plan_page(
            page,
            start_time=request.start_time,
            per_page=request.per_page,
            end_before=self.end_before,
            boundary=self._boundary,
        )
        self._boundary = plan.boundary
        self._probe = plan.next_per_page
        self._next_start = plan.next_start
        return Step(plan, self._page_size.current if self._page_size.succeeded() else None)
