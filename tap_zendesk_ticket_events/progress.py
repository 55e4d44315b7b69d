"""Plain progress lines for people watching a long backfill.

A first backfill runs for hours or days under the request budget; a silent process, or a
wall of metric JSON, leaves people asking whether it is stuck. Each stream says where it
starts and why, one line per page (or per ``progress_interval`` seconds) with how far the
export has come in time and, once that says something, when it should end at the recent pace,
and one summary line: ``done``, or ``stopped`` when an error or an interruption ended it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_zendesk_ticket_events.dates import iso
from tap_zendesk_ticket_events.scope import DESCRIPTIONS

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    from tap_zendesk_ticket_events.scope import Scope
    from tap_zendesk_ticket_events.throttle import Throttle

#: Pages the rate and the estimate are taken over.
RATE_WINDOW_PAGES = 5
#: Share of the window exported before a time left is given (unless the pages left at the
#: recent pace are no more than the pages already read). Before it, the pace of a sliver of
#: the window says little about the rest: an account's events are not spread evenly, and an
#: export without end_date runs up to now even when the events stopped long before.
ESTIMATE_AFTER_SHARE = 0.10


def duration(seconds: float) -> str:
    """A wall-clock span the way people say it: 45s, 12m 5s, 3h 20m, 2d 4h."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@dataclass
class Progress:
    """Counts one stream's export and writes its progress lines."""

    stream: str
    logger: logging.Logger
    interval: float = 0.0
    """Seconds between page lines; 0 writes one for every page."""
    budget: Throttle | None = None
    """The export budget: the start line says it, the page lines and summary its waits for others."""
    clock: Callable[[], float] = time.monotonic
    """Measures durations: the pace, the time left, the run's wall time."""
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds: where a window without end_date ends."""
    events: int = 0
    pages: int = 0
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    duplicates: int = 0
    bookmark: int | None = None
    _window_start: int = 0
    _window_end: int = 0
    _started: float = 0.0
    _others_at_start: tuple[int, float] = (0, 0.0)
    _others_at_line: float = 0.0
    _last_line: float | None = None
    _recent: deque[tuple[float, int, int, int]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW_PAGES + 1))
    """(clock, events, reached, pages) at the start and after each of the last pages."""

    def start(  # noqa: PLR0917 - each is one fact of the start line
        self,
        start_time: int,
        reason: str,
        end_time: int | None,
        auth: str,
        host: str = "",
        comments: str | None = None,
        tickets: Scope | None = None,
    ) -> None:
        """Say what window will be exported, from where and why.

        Also from which host, with which credentials, and whether full comments are asked for
        (and why), and which tickets (``support_type_scope``): what a person checks first when
        a run surprises them.
        """
        self._started = self.clock()
        self._window_start = start_time
        self._window_end = end_time if end_time is not None else int(self.wall_clock())
        self.bookmark = None
        self._recent.append((self._started, 0, start_time, 0))
        self._others_at_start = self._others()
        self._others_at_line = self._others_at_start[1]
        until = f"end_date {iso(end_time)}" if end_time is not None else f"now ({iso(self._window_end)})"
        self.logger.info(
            "%s: exporting from %s (%d, %s) up to %s from %s; auth: %s; budget: %s%s%s.",
            self.stream,
            iso(start_time),
            start_time,
            reason,
            until,
            host,
            auth,
            self.budget.describe() if self.budget is not None else "none",
            f"; tickets: {DESCRIPTIONS[tickets]} (support_type_scope={tickets})" if tickets else "",
            f"; comments sideloaded (include=comment_events: {comments})" if comments else "",
        )

    def share_done(self, reached: int) -> float:
        """Fraction of the window's time span exported once ``reached`` is."""
        span = self._window_end - self._window_start
        return 1.0 if span <= 0 else min(1.0, max(0.0, (reached - self._window_start) / span))

    def page(self, emitted: int, duplicates: int, reached: int, *, finished: bool = False) -> None:
        """Count a page; write its line unless one was written less than ``interval`` ago.

        ``finished``: the export ends with this page (end of stream or end_date), whatever
        share of the window's time span it reached.
        """
        now = self.clock()
        self.pages += 1
        self.events += emitted
        self.duplicates += duplicates
        self.bookmark = reached
        self._recent.append((now, self.events, reached, self.pages))
        if self._last_line is not None and now - self._last_line < self.interval:
            return
        self._last_line = now
        first_time, first_events, _, _ = self._recent[0]
        per_minute = (self.events - first_events) / (max(now - first_time, 1e-9) / 60)
        left = self.time_left(reached, finished=finished)
        others = self._others()[1]
        if others > self._others_at_line:
            left = f"waited {duration(others - self._others_at_line)} for another client's use of the minute; {left}"
            self._others_at_line = others
        self.logger.info(
            "%s: page %d, %s events (%s in all); reached %s, %.1f%% of the window; %s events/min; %s.",
            self.stream,
            self.pages,
            f"{emitted:,}",
            f"{self.events:,}",
            iso(reached),
            100 * self.share_done(reached),
            f"{per_minute:,.0f}",
            left,
        )

    def time_left(self, reached: int, *, finished: bool = False) -> str:
        """The time left, from what is known: the pages left at the recent pace, in plain words.

        The pace is the window's time covered per page and the wall time per page over the
        last pages, leaving out the first page: its span runs from the start of the window,
        however long before the first event that is. None is given before
        ``ESTIMATE_AFTER_SHARE`` of the window, unless the pages left are no more than the
        pages read.
        """
        remaining = max(0, self._window_end - reached)
        if finished or remaining == 0:
            return "last page"
        paged = [entry for entry in self._recent if entry[3] >= 1]
        if len(paged) < 2:
            return "time left unknown yet"
        (first_time, _, first_reached, first_page), (last_time, _, last_reached, last_page) = paged[0], paged[-1]
        pages = last_page - first_page
        covered_per_page = (last_reached - first_reached) / pages
        if covered_per_page <= 0:
            return "time left unknown yet"
        pages_left = math.ceil(remaining / covered_per_page)
        if self.share_done(reached) < ESTIMATE_AFTER_SHARE and pages_left > self.pages:
            return "time left unknown yet"
        seconds_left = pages_left * (last_time - first_time) / pages
        return "under a minute left" if seconds_left < 60 else f"about {duration(seconds_left)} left"

    def _others(self) -> tuple[int, float]:
        """The budget's waits for another client so far, and their seconds (the tap's, all streams)."""
        if self.budget is None:
            return (0, 0.0)
        return (self.budget.others_waits, self.budget.others_waited)

    def summary(
        self, bookmark: int | None, failed: BaseException | None = None, rows: Mapping[str, int] | None = None
    ) -> None:
        """One line with everything a scheduler's log should keep about the run.

        ``failed``: what ended the stream early, if anything (``sys.exc_info()[1]`` in the
        caller's ``finally``). The line then says ``stopped``, not ``done``: an error's own
        line follows it. Anything else (a signal's exit, Ctrl-C, the consumer closing the
        stream) is an interruption. ``rows``: the rows each stream derived from these pages
        wrote (``ticket_field_history``, ``ticket_comments``), given when any is selected.
        """
        final = "none" if bookmark is None else f"{bookmark} ({iso(bookmark)})"
        if failed is None:
            outcome, why = "done", ""
        elif isinstance(failed, Exception):
            outcome, why = "stopped", " The error follows."
        else:
            outcome, why = "stopped", " Interrupted."
        waits, waited = (now - then for now, then in zip(self._others(), self._others_at_start, strict=True))
        derived = "".join(f"; {name}: {count:,} rows" for name, count in (rows or {}).items())
        self.logger.info(
            "%s: %s: %s events, %d pages, %d requests, %d rate-limited (429), "
            "%d waits for another client's use of the minute (%s), %d retries, "
            "%d duplicates dropped, %s%s; bookmark %s.%s",
            self.stream,
            outcome,
            f"{self.events:,}",
            self.pages,
            self.requests,
            self.rate_limited,
            waits,
            duration(waited),
            self.retries,
            self.duplicates,
            duration(self.clock() - self._started),
            derived,
            final,
            why,
        )
