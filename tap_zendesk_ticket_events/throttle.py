"""Client-side request budgets, so the tap's own traffic never earns a 429.

Zendesk counts every incremental export request of an account in one budget per minute (10,
or 30 with the High Volume add-on), shared with every other integration that uses them, and
says on every export answer what is left of it: ``zendesk-ratelimit-incremental-exports:
total=10; remaining=8; resets=44``. The tap paces itself by two rules at once:

- its own sliding window over the last 60 seconds, at the account's ``total`` (10 until an
  answer says it), or at ``max_requests_per_minute`` when that cap is lower: the only shape
  that never bursts past the budget, whatever the pages' latency;
- what the last answer announced: when nothing is ``remaining`` (another client spent the
  rest), the next request waits ``resets`` seconds and a margin instead of drawing a 429.

Other requests (a ticket's comments) draw on the account-wide limit instead
(``ratelimit-remaining``/``ratelimit-reset``, or ``x-rate-limit-*``), paced by the same second
rule. ``mount`` puts each budget on the URLs it covers of the SDK's session.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

WINDOW_SECONDS = 60.0
TOO_MANY_REQUESTS = 429
#: The export budget before any answer has said the account's: every account has at least 10.
DEFAULT_PER_MINUTE = 10
#: Added to an announced ``resets``: Zendesk rounds it, and its clock is not ours.
RESET_MARGIN_SECONDS = 1.0
#: The header on every export answer, and the path prefix of the requests it counts.
EXPORT_BUDGET_HEADER = "zendesk-ratelimit-incremental-exports"
EXPORT_PATH_PREFIX = "/api/v2/incremental/"
#: The plans behind the budgets Zendesk documents, for the start line.
PLANS = {10: "standard", 30: "High Volume"}
#: A ``resets`` this large is a moment (epoch seconds), not a number of seconds.
EPOCH_THRESHOLD = 1_000_000_000

_FIELD = re.compile(r"^\s*([a-z_-]+)\s*=\s*(\d+)\s*$")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announced:
    """What an answer said is left of a budget."""

    total: int | None
    remaining: int
    resets: float
    """Seconds until the budget has room again."""


def export_budget(headers: Mapping[str, str]) -> Announced | None:
    """``zendesk-ratelimit-incremental-exports`` read, or None when absent or malformed.

    Names and fields may come in any case and order; ``total`` may be missing. Anything else
    leaves the tap paced as without the header: it must never fail a run.
    """
    value = _header(headers, EXPORT_BUDGET_HEADER)
    if value is None:
        return None
    fields: dict[str, int] = {}
    for part in value.split(";"):
        found = _FIELD.match(part.lower())
        if found is None:
            return None
        fields[found[1]] = int(found[2])
    if "remaining" not in fields or "resets" not in fields:
        return None
    return Announced(fields.get("total") or None, fields["remaining"], float(fields["resets"]))


def account_limit(headers: Mapping[str, str]) -> Announced | None:
    """The account-wide limit (``ratelimit-*``, else ``x-rate-limit-*``), or None."""
    for limit, remaining, reset in (
        ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
        ("x-rate-limit", "x-rate-limit-remaining", "x-rate-limit-reset"),
    ):
        left, resets = _integer(headers, remaining), _integer(headers, reset)
        if left is None or resets is None:
            continue
        seconds = resets - time.time() if resets >= EPOCH_THRESHOLD else resets
        return Announced(_integer(headers, limit), left, max(0.0, seconds))
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name in any case (requests' headers are; a plain dict in a test is not)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _integer(headers: Mapping[str, str], name: str) -> int | None:
    value = (_header(headers, name) or "").strip()
    return int(value) if value.isdigit() else None


class Announcement:
    """The last announced state of a budget, on the tap's clock, spent as requests go out."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.remaining: int | None = None
        self.resets_at = 0.0

    def heard(self, announced: Announced, now: float, *, margin: float = RESET_MARGIN_SECONDS) -> None:
        if announced.total is not None:
            self.total = announced.total
        self.remaining = announced.remaining
        self.resets_at = now + announced.resets + margin

    def wait(self, now: float) -> float:
        """Seconds before one more request would be accepted, by what was announced."""
        if self.remaining is None or self.remaining > 0 or now >= self.resets_at:
            return 0.0
        return self.resets_at - now

    def spend(self, now: float) -> None:
        """One request sent: one less remaining until the next answer says otherwise."""
        if self.remaining is None:
            return
        if now >= self.resets_at:
            self.remaining = None  # the budget has been renewed since: nothing known
        else:
            self.remaining -= 1


class Throttle:
    """Blocks until one more export request fits in the account's budget."""

    def __init__(
        self,
        cap: int | None = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        log: logging.Logger = logger,
    ) -> None:
        self.cap = cap
        """``max_requests_per_minute``: never more than this, whatever the account's budget."""
        self._log = log
        # Looked up when the throttle is made, not when this module is imported, so that a
        # test can give a whole run a clock whose sleeps take no time.
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._sent: deque[list[float]] = deque()
        self._lock = threading.Lock()
        self.account = Announcement()
        self.last_wait = 0.0
        self.requests = 0
        self.others_waits = 0
        """Waits for the part of the minute another client spent (not the tap's own use)."""
        self.others_waited = 0.0
        self._others_spent = False

    @property
    def max_per_minute(self) -> int:
        """The budget in force: the account's, or the cap when that is lower."""
        total = self.account.total
        if total is None:
            return self.cap or DEFAULT_PER_MINUTE
        return min(self.cap, total) if self.cap else total

    def describe(self) -> str:
        """The budget in force and where it comes from, as the start line says it."""
        total, cap = self.account.total, self.cap
        plan = f" ({PLANS[total]})" if total in PLANS else ""
        if total is None and cap is None:
            return f"{DEFAULT_PER_MINUTE} requests per minute until Zendesk's first answer says the account's"
        if total is None:
            return f"{cap} requests per minute, max_requests_per_minute"
        if cap is None:
            return f"{total} requests per minute, the account's{plan}"
        if cap < total:
            return f"{cap} requests per minute, max_requests_per_minute (the account's is {total}{plan})"
        return f"{total} requests per minute, the account's{plan} (max_requests_per_minute={cap} allows more)"

    def acquire(self) -> list[float]:
        """Take one slot of the budget, waiting as long as it takes; return the slot.

        The slot's time is the send time until ``settle`` moves it to when the answer came:
        Zendesk counts a request when it arrives, which is after we send it, so a slot
        counted from our send time could free a minute before Zendesk's does.
        """
        with self._lock:
            waited = 0.0
            while True:
                now = self._clock()
                self._forget(now)
                limit = self.max_per_minute
                own = WINDOW_SECONDS - (now - self._sent[0][0]) if len(self._sent) >= limit else 0.0
                told = self.account.wait(now)
                if own <= 0 and told <= 0:
                    slot = [now]
                    self._sent.append(slot)
                    self.account.spend(now)
                    self.requests += 1
                    self.last_wait = waited
                    return slot
                pause = max(own, told)
                if waited == 0.0:
                    self._say_wait(pause, own, told)
                self._sleep(pause)
                waited += pause

    def _forget(self, now: float) -> None:
        """Drop the slots older than a minute (lock held)."""
        while self._sent and now - self._sent[0][0] >= WINDOW_SECONDS:
            self._sent.popleft()

    def _say_wait(self, pause: float, own: float, told: float) -> None:
        """One line per wait: the tap's own use of the minute, or another client's."""
        total = self.account.total or self.max_per_minute
        if told > own and self._others_spent:
            self.others_waits += 1
            self.others_waited += pause
            self._log.info(
                "Export budget: Zendesk says none of the account's %d requests of this minute is left, "
                "%d of them spent by another client; waiting %.1f s.",
                total,
                total - len(self._sent),
                pause,
            )
            return
        # Sub-second waits are routine at the budget's edge: not worth a line.
        self._log.log(
            logging.INFO if pause >= 1 else logging.DEBUG,
            "Throttle: %d requests sent in the last minute (budget: %s); waiting %.1f s.",
            len(self._sent),
            self.describe(),
            pause,
        )

    def settle(self, slot: list[float]) -> None:
        """Count the slot from now, when its request has been answered (or has failed)."""
        with self._lock:
            slot[0] = self._clock()

    def heard(self, headers: Mapping[str, str]) -> None:
        """Take in what an export answer says of the account's budget (nothing, if it says nothing)."""
        announced = export_budget(headers)
        if announced is None:
            return
        with self._lock:
            now = self._clock()
            self._forget(now)
            before = self.account.total
            # Nothing left although the tap sent less than the budget in the last minute:
            # another client spent the rest. The margin guards against what the tap cannot
            # see of that; when the tap spent the budget alone, its own window is exact.
            self._others_spent = len(self._sent) < (announced.total or self.max_per_minute)
            self.account.heard(announced, now, margin=RESET_MARGIN_SECONDS if self._others_spent else 0.0)
            if self.account.total != before:
                self._log.info("Export budget: %s.", self.describe())

    def refused(self) -> None:
        """A 429: its ``Retry-After`` decides the wait (retry.py), not a second wait here."""
        with self._lock:
            self.account.remaining = None


class AccountPacer:
    """Blocks a request that is not an export while the account-wide limit says none is left."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        log: logging.Logger = logger,
    ) -> None:
        self._log = log
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._lock = threading.Lock()
        self.account = Announcement()
        self.requests = 0
        self.waits = 0

    def acquire(self) -> None:
        with self._lock:
            pause = self.account.wait(self._clock())
            if pause > 0:
                self.waits += 1
                self._log.info(
                    "Account-wide API limit: Zendesk says none of the account's %s requests of this minute "
                    "is left; waiting %.1f s.",
                    self.account.total or "",
                    pause,
                )
                self._sleep(pause)
            self.account.spend(self._clock())
            self.requests += 1

    def heard(self, headers: Mapping[str, str]) -> None:
        announced = account_limit(headers)
        if announced is not None:
            with self._lock:
                self.account.heard(announced, self._clock())


class ThrottledAdapter(HTTPAdapter):
    """A transport adapter whose every send draws on the export budget, and reads its header.

    Mounted on the export URLs of the SDK's session (``mount``), it sees every export request
    the session sends, retries included, and the OAuth re-send after a 401 too: that one goes
    straight to the adapter that carried the refused request.
    """

    def __init__(self, throttle: Throttle) -> None:
        super().__init__()
        self.throttle = throttle

    @override
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        slot = self.throttle.acquire()
        try:
            response = super().send(request, *args, **kwargs)
        finally:
            self.throttle.settle(slot)
        if response.status_code == TOO_MANY_REQUESTS:
            self.throttle.refused()
        else:
            self.throttle.heard(response.headers)
        return response


class PacedAdapter(HTTPAdapter):
    """A transport adapter for every other request: paced by the account-wide limit."""

    def __init__(self, pacer: AccountPacer) -> None:
        super().__init__()
        self.pacer = pacer

    @override
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.pacer.acquire()
        response = super().send(request, *args, **kwargs)
        self.pacer.heard(response.headers)
        return response


def mount(session: requests.Session, base_url: str, throttle: Throttle, pacer: AccountPacer) -> None:
    """Put the export budget on the export URLs of ``base_url``, the account-wide pacing on the rest.

    requests picks the adapter of the longest matching prefix, so the export prefix wins over
    the schemes' catch-all. Done once per session.
    """
    export = base_url.rstrip("/") + EXPORT_PATH_PREFIX
    if isinstance(session.get_adapter(export), ThrottledAdapter):
        return
    paced = PacedAdapter(pacer)
    session.mount("https://", paced)
    session.mount("http://", paced)
    session.mount(export, ThrottledAdapter(throttle))
