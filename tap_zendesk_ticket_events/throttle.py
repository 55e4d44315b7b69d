"""Client-side request budget, so the tap's own traffic never earns a 429.

Zendesk counts every incremental export request of an account in one budget per minute
(10, or 30 with the High Volume add-on). A sliding window over the last 60 seconds is the
only shape that never bursts past it, whatever the pages' latency.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

WINDOW_SECONDS = 60.0
#: What Zendesk's per-minute export budget counts: the incremental exports, nothing else.
EXPORT_PATH_PREFIX = "/api/v2/incremental/"

logger = logging.getLogger(__name__)


class Throttle:
    """Blocks until one more request fits in the last minute's budget."""

    def __init__(
        self,
        max_per_minute: int,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        log: logging.Logger = logger,
    ) -> None:
        self.max_per_minute = max_per_minute
        self._log = log
        # Looked up when the throttle is made, not when this module is imported, so that a
        # test can give a whole run a clock whose sleeps take no time.
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._sent: deque[list[float]] = deque()
        self._lock = threading.Lock()
        self.last_wait = 0.0
        self.requests = 0

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
                while self._sent and now - self._sent[0][0] >= WINDOW_SECONDS:
                    self._sent.popleft()
                if len(self._sent) < self.max_per_minute:
                    slot = [now]
                    self._sent.append(slot)
                    self.requests += 1
                    self.last_wait = waited
                    return slot
                pause = WINDOW_SECONDS - (now - self._sent[0][0])
                if waited == 0.0:
                    # Sub-second waits are routine at the budget's edge: not worth a line.
                    self._log.log(
                        logging.INFO if pause >= 1 else logging.DEBUG,
                        "Throttle: %d requests sent in the last minute (max_requests_per_minute=%d); waiting %.1f s.",
                        len(self._sent),
                        self.max_per_minute,
                        pause,
                    )
                self._sleep(pause)
                waited += pause

    def settle(self, slot: list[float]) -> None:
        """Count the slot from now, when its request has been answered (or has failed)."""
        with self._lock:
            slot[0] = self._clock()


class ThrottledAdapter(HTTPAdapter):
    """A transport adapter whose every send draws on the throttle.

    Mounted on the SDK's session (``ZendeskExportStream.requests_session``), it sees every
    request the session sends, retries included, and the OAuth re-send after a 401 too: that
    one goes straight to the adapter that carried the refused request. Only incremental export
    requests count: the ticket comments a redaction re-reads draw on the account-wide limit.
    """

    def __init__(self, throttle: Throttle) -> None:
        super().__init__()
        self.throttle = throttle

    @override
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if not request.path_url.startswith(EXPORT_PATH_PREFIX):
            return super().send(request, *args, **kwargs)
        slot = self.throttle.acquire()
        try:
            return super().send(request, *args, **kwargs)
        finally:
            self.throttle.settle(slot)
