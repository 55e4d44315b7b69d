"""Plain progress lines for people watching a long backfill.

A first backfill runs for hours or days under the request budget; a silent process, or a
wall of metric JSON, leaves people asking whether it is stuck. Each stream says where it
starts and why, one line per page (or per ``progress_interval`` seconds) with how far the
export has come in time and when it should end at the recent pace, and one summary line.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_zendesk_ticket_events.pages import iso

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

#: Pages the rate and the estimate are taken over.
RATE_WINDOW_PAGES = 5


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
    clock: Callable[[], float] = time.monotonic
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
    _last_line: float | None = None
    _recent: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW_PAGES + 1))

    def start(self, start_time: int, reason: str, end_time: int | None, auth: str, budget: int) -> None:
        """Say what window will be exported, from where and why, with which credentials."""
        self._started = self.clock()
        self._window_start = start_time
        self._window_end = end_time if end_time is not None else int(time.time())
        self.bookmark = None
        self._recent.append((self._started, 0, start_time))
        until = f"end_date {iso(end_time)}" if end_time is not None else f"now ({iso(self._window_end)})"
        self.logger.info(
            "%s: exporting from %s (%d, %s) up to %s; auth: %s; throttle: %d requests/minute.",
            self.stream,
            iso(start_time),
            start_time,
            reason,
            until,
            auth,
            budget,
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
        self._recent.append((now, self.events, reached))
        if self._last_line is not None and now - self._last_line < self.interval:
            return
        self._last_line = now
        first_time, first_events, first_reached = self._recent[0]
        minutes = max(now - first_time, 1e-9) / 60
        per_minute = (self.events - first_events) / minutes
        covered_per_minute = (reached - first_reached) / minutes
        remaining = max(0, self._window_end - reached)
        if finished or remaining == 0:
            left = "last page"
        elif covered_per_minute > 0:
            seconds_left = remaining / covered_per_minute * 60
            left = "under a minute left" if seconds_left < 60 else f"about {duration(seconds_left)} left"
        else:
            left = "time left unknown yet"
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

    def summary(self, bookmark: int | None) -> None:
        """One line with everything a scheduler's log should keep about the run."""
        final = "none" if bookmark is None else f"{bookmark} ({iso(bookmark)})"
        self.logger.info(
            "%s: done: %s events, %d pages, %d requests, %d rate-limited (429), %d retries, "
            "%d duplicates dropped, %s; bookmark %s.",
            self.stream,
            f"{self.events:,}",
            self.pages,
            self.requests,
            self.rate_limited,
            self.retries,
            self.duplicates,
            duration(self.clock() - self._started),
            final,
        )
