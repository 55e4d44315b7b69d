"""The walk of one export through its time windows: the one owner of where it goes next.

A time-based export is walked page by page: which ``start_time`` and page size to send
(a probe when a full second must be re-asked, a smaller page after a timeout), which ids of
the boundary second were already emitted, what the last page's plan was, and when the walk
is over. All of it lives here, in one object per run of a stream. The SDK's hooks ask it and
tell it (``client.py``): the request parameters come from it, each try reports the page size
it sends, the decoded page is handed to it, and the paginator asks it for the next token, so
nothing is keyed by response objects or read back from URLs. The rules themselves stay pure,
in ``pages.py``; this object only carries their state from one page to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.pages import Boundary, ExportPage, PagePlan, plan_page

if TYPE_CHECKING:
    from tap_zendesk_ticket_events.page_size import AdaptivePageSize

#: A page request as the SDK's paginator sees it: its start_time, and the probe's page size
#: (None: the current size). Re-asking a second with a probe is then no "loop" to the SDK.
PageToken = tuple[int, "int | None"]


@dataclass(frozen=True)
class Sent:
    """The request a page answers: what was really sent, on the try that was answered."""

    start_time: int
    per_page: int


class ExportWalk:
    """Where one export stands, and where it goes next."""

    def __init__(
        self,
        start_time: int,
        page_size: AdaptivePageSize,
        *,
        end_before: int | None,
        sideload: bool,
        fixed_per_page: int | None = None,
    ) -> None:
        """``fixed_per_page``: always send that size (``--test`` asks for one event)."""
        self.start_time = start_time
        self.page_size = page_size
        self.end_before = end_before
        self.sideload = sideload
        self._fixed_per_page = fixed_per_page
        self._next_start: int | None = start_time
        self._probe: int | None = None
        self._boundary = Boundary(start_time)
        self._sent: Sent | None = None
        self._received: ExportPage | None = None
        self.last_plan: PagePlan | None = None

    # --- the next request -------------------------------------------------------------

    @property
    def per_page(self) -> int:
        """The page size to send now.

        The probe's while a full second is re-asked, else the adaptive size (which a timeout
        may have halved since the request was prepared).
        """
        if self._fixed_per_page is not None:
            return self._fixed_per_page
        return self._probe or self.page_size.current

    def params(self) -> dict[str, Any]:
        """The query of the next request (the export's own parameters, not the auth's)."""
        if self._next_start is None:
            msg = "the export is over: there is no next request"
            raise RuntimeError(msg)
        params: dict[str, Any] = {"start_time": self._next_start, "per_page": self.per_page}
        if self.sideload:
            params["include"] = "comment_events"
        return params

    def sending(self) -> int:
        """A try is about to go out: the page size it carries, remembered as what was sent."""
        assert self._next_start is not None
        self._sent = Sent(self._next_start, self.per_page)
        return self._sent.per_page

    def timed_out(self) -> bool:
        """A page timed out: halve it for the retry; False at the floor (a failure then).

        A smaller page settles a full second as well as a probe would, so a probe is dropped.
        """
        if self._fixed_per_page is not None or not self.page_size.shrink():
            return False
        self._probe = None
        return True

    # --- the answer ------------------------------------------------------------------

    def answered(self, page: ExportPage) -> None:
        """The decoded page that answered the try last sent."""
        self._received = page

    def take_page(self) -> PagePlan:
        """Apply the page rules to the page received; the walk moves on to its plan."""
        if self._sent is None or self._received is None:
            msg = "no answered request to plan"
            raise RuntimeError(msg)
        page, sent = self._received, self._sent
        self._received = None
        plan = plan_page(
            page,
            start_time=sent.start_time,
            per_page=sent.per_page,
            end_before=self.end_before,
            boundary=self._boundary,
        )
        self.last_plan = plan
        self._boundary = plan.boundary
        self._probe = plan.next_per_page
        self._next_start = plan.next_start
        return plan

    @property
    def sent(self) -> Sent | None:
        return self._sent

    def take_received(self) -> ExportPage:
        """The decoded page, without planning it (``--test``)."""
        if self._received is None:
            msg = "no answered request"
            raise RuntimeError(msg)
        page, self._received = self._received, None
        return page

    # --- the paginator's questions -----------------------------------------------------

    def first_token(self) -> PageToken:
        return (self.start_time, None)

    def token(self) -> PageToken | None:
        """The next page's token; None when the export is over.

        Asked once the SDK has written and counted the last page's records: a page that
        showed the API will not deliver the rest of a second fails here, after them.
        """
        if self.last_plan is not None and self.last_plan.stall_error:
            raise TapError(self.last_plan.stall_error)
        if self._next_start is None:
            return None
        return (self._next_start, self._probe)

    def is_page_end(self, record: dict[str, Any]) -> bool:
        """True for the last record of the last page planned: the page's checkpoint follows it."""
        plan = self.last_plan
        return plan is not None and bool(plan.records) and record is plan.records[-1]
