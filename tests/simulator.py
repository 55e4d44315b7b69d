"""A local simulator of Zendesk's incremental ticket events export, for tests and demos.

It implements the envelope rules the tap must survive (see the API notes): inclusive
``start_time``, pages of ``per_page`` grown to hold a whole second, duplicates at page
boundaries, a ``next_page`` that is still present at end of stream, the ``comment_events``
sideload, authentication, a requests-per-minute budget, and switchable faults.

It also speaks the dialects that responses recorded from live accounts show (``dialect``):
bodies without ``end_of_stream`` and with a ``count`` that disagrees with the items, empty
pages with null ``end_time`` and ``next_page``, plain-text 429s and "too recent" answers,
403s whose ``error`` is an object; and ``make_recorded_events`` builds events in the recorded
shapes (``custom_ticket_fields``, ``via: {}``, ``metadata: {}``, string ``organization_id``,
children without ``id``, items with ``time`` only, ``updater_id: -1`` without ``created_at``).

OAuth (``OAuthServer``): ``POST /oauth/tokens`` with the refresh grant rotates the pair (the
old refresh token and its access token die at once), access tokens expire, and a dead one is
answered 401 ``invalid_token`` as Zendesk does; an unknown refresh token gets ``invalid_grant``.

It binds to loopback only. Run it alone with ``python -m tests.simulator --events 5000``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import calendar
import json
import math
import random
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count as counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Export path -> the key of its items' array (which is also the dataset's name).
PATH_KIND = {
    f"/api/v2/incremental/{kind}{suffix}": kind
    for kind in ("ticket_events", "ticket_metric_events")
    for suffix in ("", ".json")
}
EXPORT_PATHS = tuple(PATH_KIND)
#: ``support_type_scope`` values, and Zendesk's default (agent tickets only).
SCOPES = ("all", "agent", "ai_agent")
DEFAULT_SCOPE = "agent"
EMAIL = "admin@example.com"
API_TOKEN = "sim-api-token-0123456789"
ACCESS_TOKEN = "sim-access-token-abcdef"
OAUTH_TOKEN_PATH = "/oauth/tokens"
CLIENT_ID = "sim-oauth-client"
CLIENT_SECRET = "sim-client-secret-9876543210"
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}

STATUS_TEXT = {
    "500": (500, {"error": "InternalError"}),
    "502": (502, {"error": "BadGateway"}),
    "503": (503, {"error": "ServiceUnavailable"}),
    "504": (504, {"error": "GatewayTimeout"}),
}


@dataclass
class Page:
    """An export page's ready-made body."""

    payload: bytes
    count: int


@dataclass
class Request:
    """One request as the simulator saw it (credentials are never kept)."""

    path: str
    params: dict[str, str]
    status: int
    at: float
    authorization_scheme: str = ""
    count: int = 0
    retry_after: int | None = None
    oauth_generation: int = 0
    """Which issued OAuth pair the request used (its access token, or for a token request its
    refresh token): 1 for the first pair issued, 0 for none or an unknown token."""


@dataclass
class OAuthServer:
    """Zendesk's OAuth token endpoint with rotating refresh tokens and expiring access tokens.

    Tokens are random and numbered by pair (generation); every one ever issued is kept in
    ``issued`` so tests can check that none leaks into the tap's output.
    """

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    token_lifetime: float = 1800
    """The ``expires_in`` announced with each access token."""
    actual_lifetime: float | None = None
    """How long an access token really lives (None: as announced). Shorter than announced,
    it makes expiry show up as 401s, as a clock skew or a revocation would."""
    faults: deque[str] = field(default_factory=deque)
    """Faults answered to the next token requests, one each: "500", "503", "503-retry-after",
    "429", "reset", "nonjson"."""
    retry_after: int = 1
    latency: float = 0.0
    """Seconds every token answer takes: long enough, two runs refreshing at once overlap."""
    on_export: Callable[[Request], bool] | None = None
    """Called (in the server thread, before answering) with every export request that carries
    a live issued access token; returning True drops the request unanswered."""
    refresh_tokens: dict[str, int] = field(default_factory=dict)
    """Live refresh token -> its pair's generation."""
    access_tokens: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Issued access token -> (generation, monotonic time it dies); deleted ones are kept with 0."""
    issued: list[str] = field(default_factory=list)
    refreshed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _generations: Any = field(default_factory=lambda: counter(1))

    def issue_tokens(self) -> tuple[str, str]:
        """A new (access_token, refresh_token) pair, as authorizing the client gives one."""
        with self.lock:
            return self._issue()

    def _issue(self) -> tuple[str, str]:
        generation = next(self._generations)
        access = f"sim-at-{generation}-{secrets.token_hex(8)}"
        refresh = f"sim-rt-{generation}-{secrets.token_hex(8)}"
        lifetime = self.token_lifetime if self.actual_lifetime is None else self.actual_lifetime
        self.access_tokens[access] = (generation, time.monotonic() + lifetime)
        self.refresh_tokens[refresh] = generation
        self.issued += [access, refresh]
        return access, refresh

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens = {token: (gen, 0.0) for token, (gen, _) in self.access_tokens.items()}

    def generation_of(self, auth: str) -> int:
        scheme, _, value = auth.partition(" ")
        with self.lock:
            return self.access_tokens.get(value, (0, 0.0))[0] if scheme == "Bearer" else 0

    def bearer_refusal(self, auth: str) -> tuple[int, Any, dict[str, str]] | None:
        """The 401 for an issued access token that expired or was deleted; None otherwise."""
        scheme, _, value = auth.partition(" ")
        with self.lock:
            known = self.access_tokens.get(value) if scheme == "Bearer" else None
        if known is None or time.monotonic() < known[1]:
            return None
        return 401, INVALID_TOKEN, {"WWW-Authenticate": 'Bearer realm="Zendesk", error="invalid_token"'}

    def is_live(self, token: str) -> bool:
        with self.lock:
            known = self.access_tokens.get(token)
        return known is not None and time.monotonic() < known[1]

    def token_answer(self, body: dict[str, str], record: Request) -> tuple[int, Any, dict[str, str]]:
        """Answer ``POST /oauth/tokens``: the refresh grant, rotating the pair."""
        record.params = {"grant_type": str(body.get("grant_type", ""))}  # never a secret
        time.sleep(self.latency)
        if self.faults:
            fault = self.faults.popleft()
            if fault in STATUS_TEXT:
                return STATUS_TEXT[fault][0], STATUS_TEXT[fault][1], {}
            if fault == "503-retry-after":
                return 503, {"error": "ServiceUnavailable"}, {"Retry-After": str(self.retry_after)}
            if fault == "429":
                return 429, {"error": "APIRateLimitExceeded"}, {"Retry-After": str(self.retry_after)}
            if fault == "nonjson":
                return 200, "<html>Service temporarily unavailable</html>", {}
            if fault == "reset":
                return -1, None, {}
            raise ValueError(f"unknown token fault {fault!r}")
        if body.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type", "error_description": "Use the refresh grant."}, {}
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}, {}
        with self.lock:
            generation = self.refresh_tokens.pop(str(body.get("refresh_token")), 0)
            record.oauth_generation = generation
            if not generation:
                return (
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "The provided authorization grant is invalid, expired, or revoked.",
                    },
                    {},
                )
            # Rotation: the old pair dies with the refresh.
            for token, (gen, _) in list(self.access_tokens.items()):
                if gen == generation:
                    self.access_tokens[token] = (gen, 0.0)
            access, refresh = self._issue()
            self.refreshed += 1
        return (
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "scope": "read",
                "expires_in": self.token_lifetime,
                "refresh_token_expires_in": 2_592_000,
            },
            {},
        )


@dataclass
class Simulator:
    """State behind the HTTP handler; tests change it between or during runs."""

    events: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    """Where the server serving this simulator listens (set when it binds)."""
    email: str = EMAIL
    api_token: str = API_TOKEN
    access_token: str = ACCESS_TOKEN
    oauth: OAuthServer = field(default_factory=OAuthServer)
    grow_bursts: bool = True
    """Grow a page to hold its whole last second (the live API's behaviour). When off, a
    second with more events than a page is cut, and the page repeats its own start."""
    next_page_host: str | None = None
    """Put this ``scheme://host:port`` into ``next_page`` instead of the simulator's own."""
    rate_limit_per_minute: int | None = None
    retry_after: int | None = 60
    too_recent_status: int = 422
    too_recent_text: bool = False
    """Answer "too recent" as plain text instead of JSON."""
    dialect: str = "documented"
    """The envelope: "documented" (with ``end_of_stream``), "recorded" (no ``end_of_stream``,
    ``count`` = per_page whatever the items, ``next_page`` with an extra ``sort_by``), or
    "metric-example" (only ``count``, ``end_time``, ``next_page`` beside the items)."""
    now: float | None = None
    """The simulator's clock (epoch seconds); real time when None."""
    faults: deque[str] = field(default_factory=deque)
    """Faults answered to the next export requests, one each: "429", "429-no-retry-after",
    "503-retry-after", "500", "502", "503", "504", "reset", "truncated", "nonjson",
    "slow:<seconds>", "401", "403", "403-object", "404", "429-text" (plain text), and "ok" (answer
    normally)."""
    fault_above_per_page: int | None = None
    """Answer 504 to every request whose per_page exceeds this."""
    latency: float = 0.0
    """Seconds every export answer takes, to make a run slow enough to interrupt."""
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    metric_events: list[dict[str, Any]] = field(default_factory=list)
    ai_agent_tickets: set[int] = field(default_factory=set)
    """Tickets handled by an AI agent alone: their events are served only when
    ``support_type_scope`` is ``all`` or ``ai_agent`` (Zendesk's default, ``agent``, leaves them out)."""
    _timestamps: list[int] = field(default_factory=list)
    _metric_timestamps: list[int] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque)
    _payloads: dict[tuple[str, int, int, bool, str, str, str], tuple[bytes, int]] = field(default_factory=dict)
    _scoped: dict[str, tuple[list[dict[str, Any]], list[int]]] = field(default_factory=dict)

    def set_events(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events = sorted(events, key=lambda e: (event_second(e), e.get("id") or 0))
            self._timestamps = [event_second(e) for e in self.events]
            self._payloads.clear()
            self._scoped.clear()

    def set_ai_agent_tickets(self, tickets: set[int]) -> None:
        with self.lock:
            self.ai_agent_tickets = set(tickets)
            self._payloads.clear()
            self._scoped.clear()

    def set_metric_events(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.metric_events = sorted(events, key=lambda e: (metric_epoch(e), e["id"]))
            self._metric_timestamps = [metric_epoch(e) for e in self.metric_events]
            self._payloads.clear()

    def other_client(self, requests: int) -> None:
        """Spend ``requests`` of the per-minute budget now, as another integration would."""
        with self.lock:
            self._window.extend([time.monotonic()] * requests)

    def payload(
        self,
        start_time: int,
        per_page: int,
        comments: bool,
        base: str,
        kind: str = "ticket_events",
        scope: str = DEFAULT_SCOPE,
    ) -> tuple[bytes, int]:
        """The JSON body of one export page and its event count, built once and cached
        (benchmarks then measure the tap, not the simulator)."""
        key = (kind, start_time, per_page, comments, base, f"{self.grow_bursts}/{self.dialect}", scope)
        cached = self._payloads.get(key)
        if cached is None:
            events, end_of_stream, end_time = self.page(start_time, per_page, comments, kind, scope)
            query = "sort_by=updated_at&" if self.dialect == "recorded" else ""
            body: dict[str, Any] = {
                kind: events,
                "count": per_page if self.dialect == "recorded" else len(events),
                "end_of_stream": end_of_stream,
                "end_time": end_time if events else None,
                "next_page": f"{base}/api/v2/incremental/{kind}.json?{query}start_time={end_time}" if events else None,
            }
            if self.dialect != "documented":
                del body["end_of_stream"]
            cached = self._payloads[key] = (json.dumps(body).encode(), len(events))
        return cached

    def add_events(self, events: list[dict[str, Any]]) -> None:
        self.set_events(self.events + events)

    def clock(self) -> float:
        return time.time() if self.now is None else self.now

    def export_requests(self, kind: str | None = "ticket_events") -> list[Request]:
        """Export requests for one dataset (None: both)."""
        return [r for r in self.requests if r.path in PATH_KIND and kind in (None, PATH_KIND[r.path])]

    def page(
        self, start_time: int, per_page: int, comments: bool, kind: str = "ticket_events", scope: str = DEFAULT_SCOPE
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """Select the page the live API would return: (events, end_of_stream, end_time)."""
        with self.lock:
            if kind == "ticket_events":
                items, stamps = self._in_scope(scope)
            else:
                items, stamps = self.metric_events, self._metric_timestamps
            # The API never returns the last minute.
            horizon = int(self.clock()) - 60
            lo = bisect.bisect_left(stamps, start_time)
            hi_all = bisect.bisect_left(stamps, horizon)
            hi = min(lo + per_page, hi_all)
            if self.grow_bursts and lo < hi < hi_all:
                last_second = stamps[hi - 1]
                hi = min(bisect.bisect_right(stamps, last_second), hi_all)
            chosen = items[lo:hi]
            end_of_stream = hi >= hi_all
            end_time = stamps[hi - 1] if chosen else start_time
        return [render(e, comments) for e in chosen], end_of_stream, end_time

    def _in_scope(self, scope: str) -> tuple[list[dict[str, Any]], list[int]]:
        """The ticket events a ``support_type_scope`` serves, and their seconds (lock held)."""
        if scope == "all" or not self.ai_agent_tickets:
            return self.events, self._timestamps
        cached = self._scoped.get(scope)
        if cached is None:
            want_ai = scope == "ai_agent"
            chosen = [e for e in self.events if (e.get("ticket_id") in self.ai_agent_tickets) == want_ai]
            cached = self._scoped[scope] = (chosen, [event_second(e) for e in chosen])
        return cached


def render(event: dict[str, Any], comments: bool) -> dict[str, Any]:
    """Render one stored event, with full comments when the sideload is asked for."""
    if "child_events" not in event:
        return event
    out = dict(event)
    children = []
    for child in event["child_events"]:
        if isinstance(child, dict) and "_full" in child and comments:
            children.append(child["_full"])
        else:
            children.append({k: v for k, v in child.items() if k != "_full"} if isinstance(child, dict) else child)
    out["child_events"] = children
    return out


class Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the request log instead."""

    def do_GET(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.headers.get("Authorization", "")
        record = Request(url.path, params, 0, time.time(), auth.split(" ", 1)[0])
        record.oauth_generation = sim.oauth.generation_of(auth)
        sim.requests.append(record)
        on_export = sim.oauth.on_export
        if on_export and url.path in EXPORT_PATHS and sim.oauth.is_live(auth.partition(" ")[2]) and on_export(record):
            self.close_connection = True
            return
        status, body, headers = self.answer(sim, url.path, params, auth)
        record.status = status
        if "Retry-After" in headers:
            record.retry_after = int(headers["Retry-After"])
        if isinstance(body, Page):
            record.count = body.count
        if status < 0:  # a fault that is not an HTTP answer
            return
        self.send(status, body, headers)

    def do_POST(self) -> None:
        """Only ``/oauth/tokens`` takes a POST; its body is JSON or a form, as Zendesk takes."""
        sim = self.server.sim
        path = urlsplit(self.path).path
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        record = Request(path, {}, 0, time.time())
        sim.requests.append(record)
        if path != OAUTH_TOKEN_PATH:
            status, body, headers = 404, {"error": "InvalidEndpoint", "description": "Not found"}, {}
        else:
            try:
                fields = json.loads(raw) if "json" in self.headers.get("Content-Type", "") else None
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                fields = {k: v[-1] for k, v in parse_qs(raw).items()}
            status, body, headers = sim.oauth.token_answer(fields, record)
        record.status = status
        if status < 0:  # reset the connection without answering
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        self.send(status, body, headers)

    def answer(self, sim: Simulator, path: str, params: dict[str, str], auth: str) -> tuple[int, Any, dict[str, str]]:
        if path not in EXPORT_PATHS:
            return 404, {"error": "InvalidEndpoint", "description": "Not found"}, {}
        refused = sim.oauth.bearer_refusal(auth)
        if refused is not None:
            return refused
        if not self.authorized(sim, auth):
            return 401, {"error": "Couldn't authenticate you"}, {}
        if sim.rate_limit_per_minute is not None:
            wait = self.budget_wait(sim)
            if wait is not None:
                return self.rate_limited(math.ceil(wait))
        per_page = int(params.get("per_page", "1000"))
        if sim.fault_above_per_page is not None and per_page > sim.fault_above_per_page:
            return 504, {"error": "GatewayTimeout"}, {}
        if sim.faults:
            fault = sim.faults.popleft()
            answered = self.fault(fault)
            if answered is not None:
                return answered
        try:
            start_time = int(params["start_time"])
        except (KeyError, ValueError):
            return 400, {"error": "InvalidValue", "description": "start_time is required"}, {}
        if start_time > sim.clock() - 60:
            if sim.too_recent_text:
                return sim.too_recent_status, "Too recent start_time. Use a start_time older than 5 minutes", {}
            return (
                sim.too_recent_status,
                {
                    "error": "InvalidValue",
                    "description": "Too recent start_time. Use a start_time older than 5 minutes",
                },
                {},
            )
        if not 1 <= per_page <= 1000:
            return 400, {"error": "InvalidValue", "description": "per_page must be 1..1000"}, {}
        comments = params.get("include") == "comment_events"
        scope = params.get("support_type_scope", DEFAULT_SCOPE)
        if (
            PATH_KIND[path] == "ticket_events" and scope not in SCOPES
        ):  # what Zendesk answers is undocumented: a 400 is the likely answer
            return 400, {"error": "InvalidValue", "description": f"Invalid support_type_scope: {scope}"}, {}
        base = sim.next_page_host or f"http://{self.headers.get('Host', '127.0.0.1')}"
        payload, count = sim.payload(start_time, per_page, comments, base, PATH_KIND[path], scope)
        if sim.latency:
            time.sleep(sim.latency)
        return 200, Page(payload, count), {}

    @staticmethod
    def authorized(sim: Simulator, auth: str) -> bool:
        scheme, _, value = auth.partition(" ")
        if scheme == "Bearer":
            return value == sim.access_token or sim.oauth.is_live(value)
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user == f"{sim.email}/token" and password == sim.api_token
        return False

    @staticmethod
    def budget_wait(sim: Simulator) -> float | None:
        """None when one more request fits in the last minute, else the seconds until one
        does (what Zendesk's Retry-After says)."""
        with sim.lock:
            now = time.monotonic()
            while sim._window and now - sim._window[0] >= 60:
                sim._window.popleft()
            if len(sim._window) >= (sim.rate_limit_per_minute or 0):
                return 60 - (now - sim._window[0])
            sim._window.append(now)
            return None

    @staticmethod
    def rate_limited(retry_after: int | None, *, plain_text: bool = False) -> tuple[int, Any, dict[str, str]]:
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

    def fault(self, fault: str) -> tuple[int, Any, dict[str, str]] | None:
        if fault == "429":
            return self.rate_limited(self.server.sim.retry_after)
        if fault == "429-no-retry-after":
            return self.rate_limited(None)
        if fault == "429-text":
            return self.rate_limited(self.server.sim.retry_after, plain_text=True)
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
            return 503, {"error": "ServiceUnavailable"}, {"Retry-After": str(self.server.sim.retry_after)}
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
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return -1, None, {}
        if fault == "truncated":
            payload = b'{"ticket_events": [{"id": 1'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) + 100))
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True
            return -1, None, {}
        if fault == "nonjson":
            return 200, "<html>Service temporarily unavailable</html>", {}
        if fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
            return None
        raise ValueError(f"unknown fault {fault!r}")

    def send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        if isinstance(body, Page):
            payload = body.payload
        else:
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        text = isinstance(body, str)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: Simulator, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.sim = sim
        sim.url = self.url

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client drops its connection (the tap's timeouts do, on purpose);
        report anything else, which would be a fault of the simulator itself."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# --- realistic data -------------------------------------------------------------------


def event_second(event: dict[str, Any]) -> int:
    """A stored ticket event's second: ``timestamp``, else its ISO ``time`` or ``created_at``."""
    if "timestamp" in event:
        return int(event["timestamp"])
    text = event.get("time") or event["created_at"]
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def metric_epoch(event: dict[str, Any]) -> int:
    """A metric event's second: Zendesk gives it only as the ISO ``time``."""
    return calendar.timegm(time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ"))


METRICS = (
    "agent_work_time",
    "group_ownership_time",
    "pausable_update_time",
    "periodic_update_time",
    "reply_time",
    "requester_wait_time",
    "resolution_time",
)


def make_metric_events(
    count: int, *, start: int = 1_700_000_000, seed: int = 3, first_id: int = 8_001_000_000, per_second: float = 0.5
) -> list[dict[str, Any]]:
    """``count`` ticket metric events in the shapes of Zendesk's metric event types."""
    rng = random.Random(seed)
    events = []
    ts = start
    for n in range(count):
        kind = rng.choice(["activate", "pause", "fulfill", "apply_sla", "apply_group_sla", "breach", "update_status"])
        event: dict[str, Any] = {
            "id": first_id + n,
            "ticket_id": rng.randint(1, 50_000),
            "metric": rng.choice(METRICS),
            "instance_id": rng.randint(1, 3),
            "type": kind,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
        }
        if kind in {"apply_sla", "apply_group_sla"}:
            target = rng.choice([60, 240, 480])
            policy_id: int | str = rng.randint(1, 99)
            if kind == "apply_group_sla" or rng.random() < 0.2:
                # One published recording has sla.policy.id an integer, group_sla.policy.id a string.
                policy_id = str(policy_id)
            event["sla" if kind == "apply_sla" else "group_sla"] = {
                "target": target,
                "target_in_seconds": target * 60,
                "business_hours": rng.random() < 0.5,
                "policy": {"id": policy_id, "title": "Urgent tickets", "description": "First reply in 1h"},
            }
        elif kind == "update_status":
            event["status"] = {"calendar": rng.randint(0, 5000), "business": rng.randint(0, 3000)}
        elif kind == "breach" and rng.random() < 0.2:
            event["deleted"] = True
        events.append(event)
        ts += max(1, round(rng.expovariate(per_second)))
    return events


CHANGE_FIELDS = (
    ("status", ["new", "open", "pending", "hold", "solved", "closed"]),
    ("priority", ["low", "normal", "high", "urgent"]),
    ("type", ["question", "incident", "problem", "task"]),
    ("assignee_id", [3900001, 3900002, 3900003]),
    ("group_id", [2100001, 2100002]),
    ("custom_status_id", [5500001, 5500002]),
    ("custom_field_360001234567", ["billing", "shipping", None, 42, True]),
)


def make_events(
    count: int,
    *,
    start: int = 1_700_000_000,
    seed: int = 7,
    first_id: int = 7_001_000_000,
    bursts: dict[int, int] | None = None,
    per_second: float = 0.5,
) -> list[dict[str, Any]]:
    """Make ``count`` ticket events from ``start`` on, in realistic shapes.

    ``bursts`` maps an epoch second to how many events share it. Child ids are drawn from
    the same id sequence as events, as in Zendesk. A few items have the shape of the
    documented (metric-event) sample so that both shapes flow through the tap.
    """
    rng = random.Random(seed)
    burst_total = sum((bursts or {}).values())
    events: list[dict[str, Any]] = []
    next_id = first_id
    ts = start
    for _ in range(max(count - burst_total, 0)):
        events.append(_event(rng, next_id, ts))
        next_id += 11  # leave room for the child events' ids
        ts += max(1, round(rng.expovariate(per_second)))
    for second, size in (bursts or {}).items():
        for _ in range(size):
            events.append(_event(rng, next_id, second))
            next_id += 11
    return events


def _event(rng: random.Random, event_id: int, ts: int) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    if rng.random() < 0.02:  # the documented sample's (metric-event) shape
        return {
            "id": event_id,
            "ticket_id": rng.randint(1, 50_000),
            "timestamp": ts,
            "instance_id": rng.randint(1, 3),
            "metric": rng.choice(["periodic_update_time", "reply_time", "agent_work_time"]),
            "time": created,
            "type": rng.choice(["apply_sla", "breach", "measure"]),
        }
    via: Any = rng.choice(["Web form", "Mail", "API"])
    if rng.random() < 0.05:
        via = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
    children: list[dict[str, Any]] = []
    child_id = event_id
    for name, values in rng.sample(CHANGE_FIELDS, rng.randint(1, 3)):
        child_id += 1
        value = rng.choice(values)
        child: dict[str, Any] = {
            "id": child_id,
            "via": via if isinstance(via, str) else "API",
            "via_reference_id": None,
            name: value,
            "previous_value": rng.choice(values),
            "event_type": "Change",
        }
        children.append(child)
    if rng.random() < 0.3:
        child_id += 1
        children.append(
            {
                "id": child_id,
                "via": "Web form",
                "via_reference_id": None,
                "tags": ["vip"],
                "added_tags": ["vip"],
                "removed_tags": [],
                "event_type": "Change",
            }
        )
    if rng.random() < 0.5:
        child_id += 1
        public = rng.random() < 0.7
        body = rng.choice(["Printer on fire", "Where is my order?", "Thanks, solved!", "Café ☕ ok"])
        children.append(
            {
                "id": child_id,
                "via": "Web form",
                "via_reference_id": None,
                "comment_present": True,
                "comment_public": public,
                "event_type": "Comment",
                "_full": {
                    "id": child_id,
                    "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
                    "via_reference_id": None,
                    "type": "Comment",
                    "author_id": rng.randint(1, 9_000_000),
                    "body": body,
                    "html_body": f'<div class="zd-comment"><p>{body}</p></div>',
                    "plain_body": body,
                    "public": public,
                    "attachments": [],
                    "audit_id": event_id,
                    "created_at": created,
                    "event_type": "Comment",
                },
            }
        )
    event: dict[str, Any] = {
        "id": event_id,
        "ticket_id": rng.randint(1, 50_000),
        "timestamp": ts,
        "created_at": created,
        "updater_id": rng.choice([3900001, 3900002, -1]),
        "via": via,
        "system": {
            "client": "Mozilla/5.0",
            "location": "Lyon, ARA, France",
            "latitude": 45.76,
            "longitude": 4.83,
        },
        "event_type": "Audit",
        "child_events": children,
    }
    if rng.random() < 0.01:
        event["merged_ticket_ids"] = [rng.randint(1, 50_000)]
    return event


def pick_ai_agent_tickets(events: list[dict[str, Any]], share: float, *, seed: int = 11) -> set[int]:
    """About ``share`` of the tickets of ``events``, to be AI-agent tickets (``Simulator.ai_agent_tickets``).

    Their events are reshaped as a messaging conversation an AI agent answered: ``via``
    "Messaging", updated by the system (-1).
    """
    rng = random.Random(seed)
    tickets = sorted({e["ticket_id"] for e in events if isinstance(e.get("ticket_id"), int)})
    chosen = {t for t in tickets if rng.random() < share}
    for event in events:
        if event.get("ticket_id") in chosen and "child_events" in event:
            event["via"] = "Messaging"
            event["updater_id"] = -1
    return chosen


def make_recorded_events(count: int, *, seed: int = 5, **kwargs: Any) -> list[dict[str, Any]]:
    """``make_events`` reshaped into every variation recorded from live accounts (API notes).

    Documented-sample (metric-shaped) items lose ``timestamp`` and keep only ``time``; some
    events are a ticket's creation (``Create`` children); some events carry ``metadata: {}``, ``system: {}`` or null system fields, ``updater_id: -1``
    without ``created_at``; children include ``custom_ticket_fields``, ``previous_value: "0"``,
    a string ``organization_id``, and a child with neither ``id`` nor ``event_type``; sideloaded
    comments may have ``via: {}``.
    """
    rng = random.Random(seed)
    events = make_events(count, seed=seed, **kwargs)
    for event in events:
        if "metric" in event:
            del event["timestamp"]  # the documented sample has `time`, not `timestamp`
            continue
        roll = rng.random()
        if roll < 0.05:
            event["metadata"] = {}
        elif roll < 0.08:
            event["system"] = {}
        elif roll < 0.10:
            event["system"] = {"client": None, "location": None, "latitude": None, "longitude": None}
        elif roll < 0.12:
            event["updater_id"] = -1
            del event["created_at"]
        children = event["child_events"]
        if rng.random() < 0.1:  # a ticket's creation: Create children, one per field set
            children[:0] = [
                {
                    "id": event["id"] + 6,
                    "via": "Web form",
                    "via_reference_id": None,
                    "subject": "Printer on fire",
                    "event_type": "Create",
                },
                {
                    "id": event["id"] + 7,
                    "via": "Web form",
                    "via_reference_id": None,
                    "status": "new",
                    "event_type": "Create",
                },
                {
                    "id": event["id"] + 8,
                    "via": "Web form",
                    "via_reference_id": None,
                    "priority": rng.choice(["low", "normal", "high", None]),
                    "event_type": "Create",
                },
            ]
        extra = rng.random()
        if extra < 0.10:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "Web form",
                    "via_reference_id": None,
                    "custom_ticket_fields": {"360041597112": rng.choice(["set_up_app", "refund", None])},
                    "previous_value": None,
                    "event_type": "Change",
                }
            )
        elif extra < 0.15:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "API",
                    "type": rng.choice(["task", "incident"]),
                    "previous_value": "0",
                    "event_type": "Change",
                }
            )
        elif extra < 0.18:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "API",
                    "organization_id": str(rng.randint(1, 9_999)),
                    "previous_value": None,
                    "event_type": "Change",
                }
            )
        elif extra < 0.20:
            child = {"via": "Web form", "via_reference_id": None, "priority": "high"}
            if rng.random() < 0.5:  # a change without an id of its own
                child.update(previous_value="normal", event_type="Change")
            children.append(child)
        for child in children:
            full = child.get("_full")
            if full is not None and rng.random() < 0.2:
                full["via"] = {}
    return events


def undocumented_children(rng: random.Random, event_id: int) -> list[dict[str, Any]]:
    """Child events of types the derived streams do not know, or malformed ones (API notes:
    "events may be added at any time"): unknown ``event_type``, unknown keys, nested objects,
    a documented key (``status``) with another shape, missing or non-integer ids, a comment whose
    body is no text. ``ticket_events`` must keep them as sent."""
    base = event_id * 100  # an id space of their own: comment ids are a primary key
    pool: list[dict[str, Any]] = [
        {
            "id": base + 1,
            "event_type": "VoiceComment",
            "via": "Voice",
            "data": {"from": "+33100000000", "to": "+33100000001", "call_duration": 42, "recording_url": None},
            "body": "Call from +33 1 00 00 00 00",
            "public": False,
        },
        {
            "id": base + 2,
            "event_type": "Notification",
            "via": "Rule",
            "via_reference_id": 360000123,
            "subject": "Your request was updated",
            "body": "Hello {{ticket.requester.name}}",
            "recipients": [3900001, 3900002],
        },
        {"id": base + 3, "event_type": "SatisfactionRating", "score": "good", "assignee_id": 3900001, "body": "Thanks"},
        {
            "id": base + 4,
            "event_type": "AiAgentHandoff",
            "status": {"state": "escalated", "reason": "asked for a human"},
            "ai_agent": {"id": "agent-7", "name": "Answer bot", "confidence": 0.42},
        },
        {"event_type": "ChatStartedEvent", "value": {"visitor_id": "v-1", "chat_id": "c-9"}},
        {
            "id": base + 6,
            "event_type": "SlaTargetChange",
            "via": "Rule",
            "previous_value": {"minutes": 60},
            "value": {"minutes": 30},
        },
        {"id": str(base + 7), "event_type": "Change", "status": "open", "previous_value": "new"},
        {
            "id": base + 8,
            "event_type": "Change",
            "custom_ticket_fields": {"360041597112": {"nested": [1, 2]}},
            "previous_value": {"a": 1},
        },
        {"id": base + 9, "event_type": "Comment", "body": {"rich": True}, "public": "yes"},
        {
            "id": base + 10,
            "event_type": "Comment",
            "body": "Bonjour",
            "public": "yes",
            "author_id": "55",
            "attachments": "none",
        },
        {"id": None, "event_type": None, "mystery": [{"a": None}]},
    ]
    return rng.sample(pool, rng.randint(1, 3))


def make_open_ended_events(count: int, *, seed: int = 23, **kwargs: Any) -> list[dict[str, Any]]:
    """``make_recorded_events`` with undocumented and malformed child events mixed in, and
    unknown top-level keys (see ``undocumented_children``)."""
    rng = random.Random(seed)
    events = make_recorded_events(count, seed=seed, **kwargs)
    for event in events:
        if "child_events" not in event or rng.random() < 0.5:
            continue
        event["child_events"].extend(undocumented_children(rng, event["id"]))
        if rng.random() < 0.3:
            event["ai_metadata"] = {"intent": {"name": "refund", "confidence": 0.9}, "language": "fr"}
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--start", type=int, default=1_700_000_000)
    parser.add_argument(
        "--ai-agent-share", type=float, default=0.1, help="share of tickets handled by an AI agent alone (0.1)"
    )
    args = parser.parse_args()
    sim = Simulator()
    events = make_events(args.events, start=args.start)
    sim.set_ai_agent_tickets(pick_ai_agent_tickets(events, args.ai_agent_share))
    sim.set_events(events)
    sim.set_metric_events(make_metric_events(args.events // 5, start=args.start))
    server = SimulatorServer(sim, args.port)
    first, last = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (sim._timestamps[0], sim._timestamps[-1])
    )
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(args.start))
    # The minute after the last event: without end_date a window runs up to now, years of
    # it empty, and the share done and time left of the progress lines mean little.
    after = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(sim._timestamps[-1] // 60 * 60 + 60))
    print(f"Zendesk simulator at {server.url} with {args.events} ticket events", flush=True)
    print(f"events from {first} to {last} (and {args.events // 5} metric events)", flush=True)
    ai_events = sum(e.get("ticket_id") in sim.ai_agent_tickets for e in events)
    print(
        f"{len(sim.ai_agent_tickets)} AI-agent tickets ({ai_events} events), served only with "
        "support_type_scope 'all' or 'ai_agent'",
        flush=True,
    )
    config = {"api_url": server.url, "email": sim.email, "api_token": sim.api_token}
    config.update(start_date=day, end_date=after)
    print(f"config.json for the tap: {json.dumps(config)}", flush=True)
    print(f"email={sim.email} api_token={sim.api_token}", flush=True)
    print(f"client_id={sim.oauth.client_id} client_secret={sim.oauth.client_secret}", flush=True)
    print(f"refresh_token={sim.oauth.issue_tokens()[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
