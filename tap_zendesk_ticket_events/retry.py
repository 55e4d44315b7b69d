"""One retry policy for every request the tap sends (exports and OAuth token calls).

429s wait exactly ``Retry-After`` (60 s when absent: the budget is per minute) and are
bounded on their own; other transient failures (5xx, dropped connections, timeouts, unusable
bodies) back off exponentially with jitter, or wait ``Retry-After`` when the answer names
one. backoff drives the loop; the wait generator below decides each wait and when to stop.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import backoff
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from backoff.types import Details

#: Wait after a 429 that carries no Retry-After: the budget is per minute.
DEFAULT_RETRY_AFTER = 60.0
#: Consecutive 429s on one request before giving up (each waits Retry-After).
MAX_RATE_LIMITED_TRIES = 10
#: Tries of one request failing with 5xx, a dropped connection, a timeout or a bad body.
MAX_ERROR_TRIES = 6
BACKOFF_FACTOR = 2.0

#: Failures of the connection itself, always worth another try.
CONNECTION_FAILURES: tuple[type[Exception], ...] = (
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

F = TypeVar("F", bound="Callable[..., Any]")


def retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds, from either of its forms (delta seconds or HTTP date)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def wait_times(
    cured_at_once: Callable[[BaseException], bool] | None = None,
) -> Generator[float, BaseException, None]:
    """Wait generator: backoff sends each failure in and sleeps what comes out.

    ``cured_at_once`` may claim a failure it has already remedied (a smaller page after a
    timeout): that try is repeated at once and not counted. Returning ends the retries, and
    backoff re-raises the last failure.
    """
    rate_limited = errors = 0
    exc = yield 0.0
    while True:
        if cured_at_once is not None and cured_at_once(exc):
            exc = yield 0.0
            continue
        response = getattr(exc, "response", None)
        named_wait = retry_after(response) if response is not None else None
        if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            rate_limited += 1
            if rate_limited >= MAX_RATE_LIMITED_TRIES:
                return
            wait = DEFAULT_RETRY_AFTER if named_wait is None else named_wait
        else:
            errors += 1
            if errors >= MAX_ERROR_TRIES:
                return
            expo = BACKOFF_FACTOR * 2 ** (errors - 1)
            wait = named_wait if named_wait is not None else expo + random.uniform(0, 1)  # noqa: S311
        exc = yield wait


def with_retries(
    func: F,
    failures: tuple[type[Exception], ...],
    *,
    on_backoff: Callable[[Details], None],
    cured_at_once: Callable[[BaseException], bool] | None = None,
) -> F:
    """``func`` retried on ``failures`` and on connection failures, by ``wait_times``."""
    decorated: F = backoff.on_exception(
        lambda: wait_times(cured_at_once),
        (*failures, *CONNECTION_FAILURES),
        max_tries=None,  # wait_times decides, per kind of failure
        jitter=None,  # Retry-After is waited exactly; wait_times jitters the backoff
        on_backoff=on_backoff,
        logger=None,
    )(func)
    return decorated
