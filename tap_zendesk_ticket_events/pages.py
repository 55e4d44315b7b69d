"""The rules that turn one export page into records and the next ``start_time``.

Kept free of HTTP and of the SDK so each rule is plain to read and test. The rules (see the
API notes): ``start_time`` is inclusive, so the page's boundary second comes back on the
next page and is deduplicated by id; the export ends on ``end_of_stream``, never on a
missing ``next_page``; a second holding more events than a page is delivered whole in one
oversized page, after which the next page starts one second later; a page that repeats its
own ``start_time`` without such a burst would loop forever, so it is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tap_zendesk_ticket_events.errors import TapError

REPLICATION_KEY = "end_time"

#: Reads an item's epoch second (None when it has none); each endpoint says where it is.
TimestampOf = Callable[[dict[str, Any]], "int | None"]


def epoch_field(item: dict[str, Any]) -> int | None:
    """Ticket events carry their epoch second in ``timestamp``."""
    value = item.get("timestamp")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class ExportPage:
    """One decoded export response: the envelope fields the rules need."""

    items: list[dict[str, Any]]
    end_time: int | None
    end_of_stream: bool

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
        end_time = body.get("end_time")
        if end_time is not None and not isinstance(end_time, int):
            msg = "'end_time' is not an integer"
            raise ValueError(msg)
        return cls(items, end_time, bool(body.get("end_of_stream", False)))

    @classmethod
    def empty_end(cls) -> ExportPage:
        """The page that stands for Zendesk's "start_time too recent": nothing new yet."""
        return cls([], None, end_of_stream=True)


@dataclass
class Boundary:
    """Ids already emitted that the next page may deliver again (its start second on)."""

    start_time: int
    ids: set[Any] = field(default_factory=set)


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


def plan_page(
    page: ExportPage,
    *,
    start_time: int,
    per_page: int,
    end_before: int | None,
    boundary: Boundary,
    timestamp_of: TimestampOf = epoch_field,
) -> PagePlan:
    """Apply the export rules to one page requested at ``start_time`` with ``per_page``.

    Each record is stamped with a replication value at which a resumed export misses
    nothing: its own timestamp (``start_time`` being inclusive, resuming there re-reads the
    rest of that second), clamped into the page's window so values never decrease, and the
    page's last record with the page's ``end_time``.
    """

    def _ts(item: dict[str, Any]) -> int:
        value = timestamp_of(item)
        return start_time if value is None else value

    end_time = page.end_time
    if end_time is None:
        end_time = max((_ts(item) for item in page.items), default=start_time)
    if end_time < start_time:
        msg = (
            f"Zendesk answered a page for start_time={start_time} with end_time={end_time}, "
            "earlier than its own start; refusing to go backwards."
        )
        raise TapError(msg)

    window_end = end_time if end_before is None else min(end_time, end_before)
    ordered = sorted(page.items, key=lambda item: (_ts(item), _id_key(item)))
    seen = boundary.ids if boundary.start_time == start_time else set()
    records: list[dict[str, Any]] = []
    emitted_ids: set[Any] = set()
    duplicates = 0
    for item in ordered:
        ts = _ts(item)
        if end_before is not None and ts >= end_before:
            break
        item_id = item.get("id")
        if item_id in seen or item_id in emitted_ids:
            duplicates += 1
            continue
        emitted_ids.add(item_id)
        item[REPLICATION_KEY] = min(max(ts, start_time), window_end)
        records.append(item)
    if records:
        records[-1][REPLICATION_KEY] = window_end

    finished = page.end_of_stream or (end_before is not None and end_time >= end_before)
    stall_error = None
    if finished:
        next_start = None
    elif end_time > start_time:
        next_start = end_time
    elif len(page.items) > per_page:
        # The whole of a crowded second came in one oversized page: step past it.
        next_start = end_time + 1
    else:
        next_start = None
        stall_error = (
            f"Zendesk is not delivering the rest of second {start_time} "
            f"({iso(start_time)}): a page of {len(page.items)} events (per_page={per_page}) "
            "ended where it started and the stream is not at its end; stopping to avoid a "
            "loop. The events received were emitted and the state points at that second."
        )

    next_ids: set[Any] = set()
    if next_start is not None:
        next_ids = {item.get("id") for item in ordered if _ts(item) >= next_start}
    return PagePlan(records, next_start, Boundary(next_start or 0, next_ids), duplicates, stall_error)


def _id_key(item: dict[str, Any]) -> tuple[int, str]:
    """Sort key for ids that are normally integers but are not trusted to be."""
    value = item.get("id")
    return (value, "") if isinstance(value, int) else (0, str(value))


def epoch_of_iso(text: str) -> int | None:
    """Epoch seconds of an ISO 8601 date or date-time (UTC when naive); None if unparsable."""
    text = text.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not take "Z"
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def iso(epoch: int) -> str:
    """An epoch second as an ISO 8601 UTC string, for people reading logs."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
