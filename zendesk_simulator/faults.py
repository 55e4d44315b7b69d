"""Faults and the request budget: what the simulator answers when it does not answer a page.

Switchable faults (``Simulator.faults``, one per request: 429s with and without
``Retry-After``, plain-text 429s as recorded from the incremental exports, 5xx, a reset
connection, a truncated or non-JSON body, a slow answer, 401/403/404 in their recorded shapes)
and the budgets: the account's export requests per minute, announced on every export answer
(``zendesk-ratelimit-incremental-exports``) and answered with 429 and the ``Retry-After``
Zendesk would send when spent, optionally shared with another client; and the account-wide
limit of every other endpoint (``ratelimit-*``, ``x-rate-limit*``).
"""

from __future__ import annotations

import math
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zendesk_simulator.envelopes import Simulator
    from zendesk_simulator.server import Handler

#: The faults ``Simulator.faults`` takes, one per export request ("slow:<seconds>" too).
FAULTS = (
    "429",
    "429-no-retry-after",
    "429-text",
    "503-retry-after",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "truncated",
    "nonjson",
    "401",
    "403",
    "403-object",
    "404",
    "ok",
    "slow:5",
)
#: An answer: status (negative: no HTTP answer at all), body, headers.
Answer = tuple[int, Any, dict[str, str]]

STATUS_TEXT = {
    "500": (500, {"error": "InternalError"}),
    "502": (502, {"error": "BadGateway"}),
    "503": (503, {"error": "ServiceUnavailable"}),
    "504": (504, {"error": "GatewayTimeout"}),
}


#: The export budget's header on every export answer, once the account has a budget.
EXPORT_BUDGET_HEADER = "zendesk-ratelimit-incremental-exports"
#: Zendesk's export budget per minute with the High Volume add-on.
HIGH_VOLUME = 30


def spend_export(sim: Simulator) -> tuple[float | None, dict[str, str]]:
    """Count one export request against the account's budget (``rate_limit_per_minute``).

    Returns None and the budget's header when it fits in the last minute, else the seconds
    until one does (what Zendesk's Retry-After says) and the header saying nothing is left.
    Another client (``other_client_per_minute``) spends its share at the start of each minute
    counted from the first export request, before the request that finds it spent.
    """
    total = sim.rate_limit_per_minute or 0
    with sim.lock:
        now = time.monotonic()
        _other_client_spends(sim, total, now)
        window = sim._window
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= total:
            wait = 60 - (now - window[0])
            return wait, budget_header(total, 0, wait)
        window.append(now)
        return None, budget_header(total, total - len(window), 60 - (now - window[0]))


def budget_header(total: int, remaining: int, resets: float) -> dict[str, str]:
    """``zendesk-ratelimit-incremental-exports`` as a live account sends it (whole seconds, rounded up)."""
    return {EXPORT_BUDGET_HEADER: f"total={total}; remaining={remaining}; resets={math.ceil(resets)}"}


def _other_client_spends(sim: Simulator, total: int, now: float) -> None:
    """Another integration's requests of each minute up to ``now``, as far as the budget lets it."""
    if not sim.other_client_per_minute:
        return
    if sim._other_client_next is None:
        sim._other_client_next = now
    while sim._other_client_next <= now:
        at = sim._other_client_next
        live = sum(1 for t in sim._window if at - t < 60)
        sim._window.extend([at] * min(sim.other_client_per_minute, max(0, total - live)))
        sim._other_client_next = at + 60


def spend_account(sim: Simulator) -> tuple[float | None, dict[str, str]]:
    """Count one request that is not an export against the account-wide limit per minute.

    Returns what ``spend_export`` does, with the account-wide headers a live account sends
    (``x-rate-limit``, ``ratelimit-limit``, ``ratelimit-remaining``, ``ratelimit-reset``).
    """
    limit = sim.account_rate_limit_per_minute
    with sim.lock:
        now = time.monotonic()
        window = sim._account_window
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= limit:
            wait = 60 - (now - window[0])
            return wait, account_headers(limit, 0, wait)
        window.append(now)
        return None, account_headers(limit, limit - len(window), 60 - (now - window[0]))


def account_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "x-rate-limit": str(limit),
        "x-rate-limit-remaining": str(remaining),
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(math.ceil(reset)),
    }


def rate_limited(retry_after: int | None, *, plain_text: bool = False) -> Answer:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if plain_text:  # as recorded from the incremental exports
        return 429, "Number of allowed incremental export API requests per minute exceeded", headers
    return (
        429,
        {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed incremental export API requests per minute exceeded",
        },
        headers,
    )


def export_fault(handler: Handler, fault: str) -> Answer | None:
    if fault == "429":
        return rate_limited(handler.server.sim.retry_after)
    if fault == "429-no-retry-after":
        return rate_limited(None)
    if fault == "429-text":
        return rate_limited(handler.server.sim.retry_after, plain_text=True)
    if fault == "403-object":
        return (
            403,
            {
                "error": {
                    "title": "Forbidden",
                    "message": "Access to this resource is restricted. Contact your admin.",
                }
            },
            {},
        )
    if fault == "503-retry-after":
        return 503, {"error": "ServiceUnavailable"}, {"Retry-After": str(handler.server.sim.retry_after)}
    if fault == "ok":
        return None
    if fault in STATUS_TEXT:
        status, body = STATUS_TEXT[fault]
        return status, body, {}
    if fault == "401":
        return 401, {"error": "Couldn't authenticate you"}, {}
    if fault == "403":
        return 403, {"error": "Forbidden", "description": "You do not have access"}, {}
    if fault == "404":
        return 404, {"error": {"title": "No help desk at example.zendesk.com"}}, {}
    if fault == "reset":
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        handler.close_connection = True
        return -1, None, {}
    if fault == "truncated":
        payload = b'{"ticket_events": [{"id": 1'
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload) + 100))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.close_connection = True
        return -1, None, {}
    if fault == "nonjson":
        return 200, "<html>Service temporarily unavailable</html>", {}
    if fault.startswith("slow:"):
        time.sleep(float(fault.split(":", 1)[1]))
        return None
    raise ValueError(f"unknown fault {fault!r}")
