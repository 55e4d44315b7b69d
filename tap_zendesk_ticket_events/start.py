"""Where an export starts: its bookmark or start_date, and the mistakes about either said in one line.

A bookmark may come from this tap (epoch seconds), from another tool or from ``meltano state
set`` (a string of seconds, an ISO date-time, or epoch milliseconds): each is read as epoch
seconds when the state is loaded (``state.normalise_bookmarks``; milliseconds are told here).
A bookmark in the future (a mistyped year: a run would wait for it forever, exiting 0 every
time) is one line naming the stream and the value. A start within the last minute is no
mistake: Zendesk never serves that minute, so there is nothing to export yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_zendesk_ticket_events.dates import iso
from tap_zendesk_ticket_events.errors import TapError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_zendesk_ticket_events.state import ExportState

#: Zendesk never serves the last minute; a start this close to now has nothing to export.
RECENT_SECONDS = 61
#: Epoch seconds this large are in the year 5138: such a bookmark is epoch milliseconds
#: (1700003000000 is 2023-11-14T23:03:20Z), as JavaScript tools and some taps write them.
MILLISECONDS_FROM = 100_000_000_000


def seconds_of_milliseconds(stream: str, epoch: int) -> tuple[int, str | None]:
    """A bookmark in epoch seconds, and the line that says so when it was in milliseconds."""
    if epoch < MILLISECONDS_FROM:
        return epoch, None
    seconds = epoch // 1000
    note = (
        f"The state's bookmark for '{stream}' looks like milliseconds since the epoch ({epoch}): read as "
        f"{seconds} seconds ({iso_or_value(seconds)}). The tap writes seconds from now on."
    )
    return seconds, note


@dataclass(frozen=True)
class Start:
    """Where an export starts, and why (for the start line)."""

    start_time: int
    reason: str
    too_recent: bool
    """True when the start is within the last minute Zendesk never serves: nothing to export yet."""


def starting_point(stream: str, bookmark: int | None, start_date: int, now: float | None = None) -> Start:
    """The export's start: the bookmark, or start_date when there is none or it is later.

    A bookmark in the future ends the run with one line naming it (start_date is refused in the
    future by the settings already). ``now``: epoch seconds, the clock's by default.
    """
    now = time.time() if now is None else now
    if bookmark is not None and bookmark > now:
        msg = (
            f"The state's bookmark for '{stream}' is in the future: {bookmark} ({iso_or_value(bookmark)}), "
            f"later than now ({iso(int(now))}); a mistyped year? Set it to a past second with "
            "`meltano state set`, or clear the state to start again from start_date."
        )
        raise TapError(msg)
    if bookmark is None:
        start, reason = start_date, "start_date; no bookmark yet"
    elif bookmark >= start_date:
        start, reason = bookmark, "the bookmark"
    else:
        start, reason = start_date, "start_date, which is later than the bookmark"
    return Start(start, reason, too_recent=start > now - RECENT_SECONDS)


@dataclass(frozen=True)
class Reader:
    """A stream one walk of the export serves: its state entry, and where it starts and why.

    ``take``: what takes each of its records (a stream made from the export's pages writes its
    rows); None for the export's own stream, whose records go to the SDK.
    """

    name: str
    state: ExportState
    start: int
    reason: str
    take: Callable[[dict[str, Any]], None] | None = None


def own_words(reason: str) -> str:
    """A start's reason as one stream of several says it ("from start_date, no bookmark of its own yet")."""
    return {
        "start_date; no bookmark yet": "start_date, no bookmark of its own yet",
        "the bookmark": "its bookmark",
        "start_date, which is later than the bookmark": "start_date, which is later than its bookmark",
    }.get(reason, reason)


def sideload_phases(
    start: int, sideload_from: int | None, end_before: int | None
) -> list[tuple[int, int | None, bool]]:
    """The stretches one walk crosses: (from, before, with the comments sideloaded).

    The sideload makes pages heavier (and slower, and likelier to time out): it is asked only
    from the second the streams that need it start at. A page asked without it that reaches
    past that second is cut there, and the walk goes on from that second with it.
    """
    if sideload_from is None:
        return [(start, end_before, False)]
    if sideload_from <= start:
        return [(start, end_before, True)]
    return [(start, sideload_from, False), (sideload_from, end_before, True)]


def iso_or_value(epoch: int) -> str:
    """The date of an epoch second, or a word for one no calendar holds (years past 9999)."""
    try:
        return iso(epoch)
    except (ValueError, OverflowError, OSError):
        return "beyond the year 9999"
