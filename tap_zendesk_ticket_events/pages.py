"""The rules that turn one export page into records and the next ``start_time``.

Kept free of HTTP and of the SDK so each rule is plain to read and test. The rules (see the
API notes, including what recorded responses show):

- ``start_time`` is inclusive, so the page's boundary second comes back on the next page and
  is deduplicated by id (an item's second: ``timestamp``, else ``time`` or ``created_at``).
- The export ends on ``end_of_stream: true``. Responses without the key (recorded in the wild,
  and Zendesk's own metric-events example) end at a page that brings nothing past its
  ``start_time``; an empty page ends it too, since there is nothing to go on from.
- Zendesk grows a page to hold its last second whole. A page that ends where it started is a
  complete second when it grew past ``per_page``; when it holds exactly ``per_page`` items it
  is either a second of exactly that size or a second cut short by an API that broke the rule,
  so the same second is asked once more at another size (a probe): a probe that grows, or
  moves past the second, settles it; one that is cut again is an error naming the second, never
  a silent skip and never a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tap_zendesk_ticket_events.dates import epoch_of_iso, iso
from tap_zendesk_ticket_events.errors import TapError

REPLICATION_KEY = "end_time"
#: Zendesk's largest ``per_page``.
MAX_PER_PAGE = 1000


def item_second(item: dict[str, Any]) -> int | None:
    """An item's epoch second: ``timestamp``, else the ISO ``time`` or ``created_at``.

    Ticket events carry ``timestamp``; metric events, and the documented (metric-shaped)
    sample of ticket events, carry ``time``; ``created_at`` is the last resort. None when the
    item names no second at all (the page's ``start_time`` then stands in).
    """
    value = item.get("timestamp")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    for key in ("time", "created_at"):
        text = item.get(key)
        if isinstance(text, str):
            epoch = epoch_of_iso(text)
            if epoch is not None:
                return epoch
    return None


@dataclass
class ExportPage:
    """One decoded export response: the envelope fields the rules need.

    ``count`` and ``next_page`` are ignored on purpose: recorded copies show ``count``
    disagreeing with the items, and ``next_page`` can point elsewhere or repeat the boundary.
    """

    items: list[dict[str, Any]]
    end_time: int | None
    end_of_stream: bool | None
    """None when the response has no ``end_of_stream`` key (older and metric-export bodies)."""

    @classmethod
    def decode(cls, body: object, records_key: str) -> ExportPage:
        """Check the envelope's shape; raise TypeError or ValueError naming what is wrong."""
        if not isinstance(body, dict):
            msg = "the body is not a JSON object"
            raise TypeError(msg)
        items = body.get(records_key)
        if not isinstance(items, list):
            msg = f"the body has no '{records_key}' array"
            raise TypeError(msg)
        if not all(isinstance(item, dict) for item in items):
            msg = f"an item of '{records_key}' is not a JSON object"
            raise TypeError(msg)
        end_time = body.get("end_time")
        if end_time is not None and (not isinstance(end_time, int) or isinstance(end_time, bool)):
            msg = "'end_time' is not an integer"
            raise ValueError(msg)
        end_of_stream = body.get("end_of_stream")
        return cls(items, end_time, None if end_of_stream is None else bool(end_of_stream))

    @classmethod
    def empty_end(cls) -> ExportPage:
        """The page that stands for Zendesk's "start_time too recent": nothing new yet."""
        return cls([], None, end_of_stream=True)


@dataclass
class Boundary:
    """Ids already emitted that the next page may deliver again (its start second on)."""

    start_time: int
    ids: set[Any] = field(default_factory=set)
    probed: bool = False
    """True when the next page is the probe of a full page that ended where it started."""


@dataclass
class PagePlan:
    """What to emit from a page, and where the export goes next."""

    records: list[dict[str, Any]]
    next_start: int | None
    """The next request's start_time; None when the export is complete."""
    boundary: Boundary
    duplicates: int
    stall_error: str | None = None
    """Set when the API will not deliver the rest of a second: fail after emitting."""
    next_per_page: int | None = None
    """The probe's page size when the next request re-asks a full second; else None."""


def probe_size(per_page: int) -> int:
    """The page size that re-asks a full second.

    One more, so that the probe itself moves on past a second of exactly ``per_page`` events
    (and is no wasted request); one less at Zendesk's maximum, where an API that grows pages
    must then grow it.
    """
    return per_page + 1 if per_page < MAX_PER_PAGE else per_page - 1


def plan_page(
    page: ExportPage,
    *,
    start_time: int,
    per_page: int,
    end_before: int | None,
    boundary: Boundary,
) -> PagePlan:
    """Apply the export rules to one page requested at ``start_time`` with ``per_page``.

    Each record is a new dict: the item (left as the caller gave it) with a replication
    value at which a resumed export misses nothing: its own second (``start_time`` being
    inclusive, resuming there re-reads the rest of that second), clamped into the page's
    window so values never decrease, and the page's last record with the page's ``end_time``.
    """
    seconds = [item_second(item) for item in page.items]
    for position, item in enumerate(page.items):
        if item.get("id") is None:
            # Without an id an event can be neither deduplicated nor keyed by a target.
            msg = (
                f"Zendesk sent an item without an 'id' (item {position + 1} of {len(page.items)}) on the page "
                f"for start_time={start_time} ({iso(start_time)}); stopping before that page. "
                "The state points at that page."
            )
            raise TapError(msg)
    end_time = page.end_time
    if end_time is None:
        end_time = max((s for s in seconds if s is not None), default=start_time)
    if end_time < start_time:
        msg = (
            f"Zendesk answered a page for start_time={start_time} with end_time={end_time}, "
            "earlier than its own start; refusing to go backwards."
        )
        raise TapError(msg)

    window_end = end_time if end_before is None else min(end_time, end_before)
    unplaced = {item["id"] for item, second in zip(page.items, seconds, strict=True) if second is None}
    ordered = sorted(
        ((item, start_time if second is None else second) for item, second in zip(page.items, seconds, strict=True)),
        key=lambda entry: (entry[1], _id_key(entry[0])),
    )
    seen = boundary.ids if boundary.start_time == start_time else set()
    chosen: list[tuple[dict[str, Any], int]] = []
    emitted_ids: set[Any] = set()
    duplicates = 0
    for item, second in ordered:
        if end_before is not None and second >= end_before:
            break
        item_id = item["id"]
        if item_id in seen or item_id in emitted_ids:
            duplicates += 1
            continue
        emitted_ids.add(item_id)
        chosen.append((item, min(max(second, start_time), window_end)))
    records = [{**item, REPLICATION_KEY: value} for item, value in chosen]
    if records:
        records[-1][REPLICATION_KEY] = window_end

    next_start, next_per_page, stall_error = _next_request(
        page, start_time=start_time, end_time=end_time, per_page=per_page, end_before=end_before, boundary=boundary
    )
    next_ids: set[Any] = set()
    if next_start is not None:
        # An item whose second is unknown may belong to the boundary: keep it out of the next page.
        next_ids = {item["id"] for item, second in ordered if second >= next_start} | unplaced
    return PagePlan(
        records,
        next_start,
        Boundary(next_start or 0, next_ids, probed=next_per_page is not None),
        duplicates,
        stall_error,
        next_per_page,
    )


def _next_request(  # noqa: PLR0911 - one return per rule reads best
    page: ExportPage, *, start_time: int, end_time: int, per_page: int, end_before: int | None, boundary: Boundary
) -> tuple[int | None, int | None, str | None]:
    """Where the export goes after this page: (next start, probe size, stall error)."""
    if page.end_of_stream or (end_before is not None and end_time >= end_before):
        return None, None, None
    if end_time > start_time:
        return end_time, None, None
    # The page ends where it started.
    count = len(page.items)
    if count > per_page:
        # The whole of a crowded second came in one grown page: step past it.
        return end_time + 1, None, None
    if count == per_page:
        if not (boundary.probed and boundary.start_time == start_time):
            return start_time, probe_size(per_page), None
        stall = (
            f"Zendesk is not delivering the rest of second {start_time} ({iso(start_time)}): pages of "
            f"{per_page} events ended where they started, at two page sizes, and never grew to hold the "
            "second; stopping to avoid a loop or a gap. The events received were emitted and the state "
            "points at that second."
        )
        return None, None, stall
    if count == 0 or page.end_of_stream is None:
        # Nothing past start_time: the end of the export (no end_of_stream key), or an empty page
        # that leaves nothing to go on from. The bookmark stays where the data ends.
        return None, None, None
    # end_of_stream is false and the page, not full, holds only this second: the second is
    # whole, and the API says there is more after it.
    return start_time + 1, None, None


def _id_key(item: dict[str, Any]) -> tuple[int, str]:
    """Sort key for ids that are normally integers but are not trusted to be."""
    value = item.get("id")
    return (value, "") if isinstance(value, int) else (0, str(value))
