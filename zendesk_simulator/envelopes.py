"""The export's envelopes and dialects: which page the live API would answer, in which shape.

It implements the envelope rules the tap must survive (see the API notes): inclusive
``start_time``, pages of ``per_page`` grown to hold a whole second, duplicates at page
boundaries, a ``next_page`` that is still present at end of stream, the ``comment_events``
sideload, ``support_type_scope`` (AI-agent tickets), and the dialects that responses recorded
from live accounts show (``Simulator.dialect``): bodies without ``end_of_stream`` and with a
``count`` that disagrees with the items, empty pages with null ``end_time`` and ``next_page``.
"""

from __future__ import annotations

import bisect
import codecs
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from zendesk_simulator import redactions as redaction_rules
from zendesk_simulator.data import event_second, metric_epoch
from zendesk_simulator.oauth import OAuthServer
from zendesk_simulator.redactions import Redaction, Redactions

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
    """The account's export budget per minute (10, or 30 with High Volume): announced in the
    ``zendesk-ratelimit-incremental-exports`` header of every export answer, and enforced with
    429s. None: no budget and no header."""
    other_client_per_minute: int = 0
    """Export requests another integration of the account spends at the start of every minute
    (counted from the first export request), as far as the budget lets it."""
    account_rate_limit_per_minute: int = 400
    """The account-wide limit of the other endpoints (a ticket's comments), in their headers."""
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
    "slow:<seconds>", "401", "403", "403-object", "404", "429-text" (plain text), "empty-goes-on"
    and "empty-stuck" (an empty page with ``end_of_stream: false`` whose ``next_page`` moves on, or
    does not), and "ok" (answer normally)."""
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
    accounts: dict[str, Simulator] = field(default_factory=dict)
    """Other accounts served under a path prefix of this address ('/beta' -> its simulator), as
    behind a proxy serving several accounts on one host; each has its own events and OAuth."""
    _timestamps: list[int] = field(default_factory=list)
    _metric_timestamps: list[int] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque)
    _other_client_next: float | None = None
    _account_window: deque[float] = field(default_factory=deque)
    redactions: Redactions = field(default_factory=Redactions)
    """Redactions, deleted tickets and faults of the comments endpoint (redactions.py)."""
    _payloads: dict[tuple[str, int, int, bool, str, str, str, int], tuple[bytes, int]] = field(default_factory=dict)
    _scoped: dict[str, tuple[list[dict[str, Any]], list[int]]] = field(default_factory=dict)

    def set_events(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events = sorted(events, key=lambda e: (event_second(e), e.get("id") or 0))
            self._timestamps = [event_second(e) for e in self.events]
            self._payloads.clear()
            self._scoped.clear()

    def add_account(self, prefix: str) -> Simulator:
        """Another account served at ``{url}{prefix}`` (``prefix`` like '/beta'), with its own state."""
        account = Simulator(url=self.url + prefix)
        self.accounts[prefix] = account
        return account

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
        (benchmarks then measure the tap, not the simulator).
        """
        in_effect = len(self.redactions.in_effect(self.clock())) if self.redactions.done else 0
        key = (kind, start_time, per_page, comments, base, f"{self.grow_bursts}/{self.dialect}", scope, in_effect)
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
            cached = self._payloads[key] = (as_sent(body), len(events))
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
            in_effect = self.redactions.in_effect(self.clock()) if self.redactions.done else ()
        return [render(e, comments, in_effect) for e in chosen], end_of_stream, end_time

    # --- redactions and the ticket comments endpoint (redactions.py) ---------------------

    def redact_comment(self, comment_id: int, text: str | None = None, *, at: int, updater_id: int = 3900001) -> int:
        """Erase ``text`` (None: all of it) from a comment at ``at``; the redaction audit's id.

        From ``at`` on (the simulator's clock), exports and the comments endpoint send the
        current text, and the export carries the redaction audit at second ``at``.
        """
        event, _ = redaction_rules.find_comment(self.events, comment_id)
        return self._redact("comment", comment_id, event["ticket_id"], at, text, updater_id)

    def redact_attachment(self, attachment_id: int, *, at: int, updater_id: int = 3900001) -> int:
        """Redact an attachment at ``at``: listed from then on as ``redacted.txt``, size 1."""
        event, _ = redaction_rules.find_attachment(self.events, attachment_id)
        return self._redact("attachment", attachment_id, event["ticket_id"], at, None, updater_id)

    def _redact(self, kind: str, target_id: int, ticket_id: int, at: int, text: str | None, updater_id: int) -> int:
        audit = redaction_rules.redaction_audit(
            self.redactions, kind=kind, target_id=target_id, ticket_id=ticket_id, at=at, updater_id=updater_id
        )
        with self.lock:
            self.redactions.done.append(Redaction(kind, target_id, ticket_id, at, text, audit))
        self.add_events([audit])
        return int(audit["id"])

    def add_attachment(self, comment_id: int, attachment: dict[str, Any]) -> None:
        """List ``attachment`` on a stored comment (generated comments have none)."""
        _, comment = redaction_rules.find_comment(self.events, comment_id)
        with self.lock:
            comment.setdefault("attachments", []).append(attachment)
            self._payloads.clear()

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket: its comments answer 404 from now on (its events stay in the export)."""
        with self.lock:
            self.redactions.deleted_tickets.add(ticket_id)

    def comments_answer(self, ticket_id: int, params: dict[str, str], base: str) -> tuple[int, Any]:
        """``GET /api/v2/tickets/{id}/comments``: a cursor page of the current text, or 404."""
        with self.lock:
            if ticket_id in self.redactions.deleted_tickets:
                return 404, {"error": "RecordNotFound", "description": "Not found"}
            in_effect = self.redactions.in_effect(self.clock())
            stored = redaction_rules.ticket_comments(self.events, ticket_id)
            known = bool(stored) or any(e.get("ticket_id") == ticket_id for e in self.events)
        if not known:
            return 404, {"error": "RecordNotFound", "description": "Not found"}
        comments = [redaction_rules.current(c, in_effect) for c in stored]
        return redaction_rules.comments_page(comments, ticket_id, params, base)

    def comment_requests(self) -> list[Request]:
        """Requests to the ticket comments endpoint."""
        return [r for r in self.requests if redaction_rules.COMMENTS_PATH.match(r.path)]

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


def _raw_bytes_or_escapes(error: UnicodeError) -> tuple[bytes, int]:
    r"""Encode what UTF-8 cannot: \udc80-\udcff as that raw byte, any other lone surrogate as its JSON escape."""
    assert isinstance(error, UnicodeEncodeError)
    chunk = error.object[error.start : error.end]
    out = b"".join(
        bytes([ord(char) - 0xDC00]) if 0xDC80 <= ord(char) <= 0xDCFF else f"\\u{ord(char):04x}".encode()
        for char in chunk
    )
    return out, error.end


codecs.register_error("zendesk-simulator", _raw_bytes_or_escapes)


def as_sent(body: Any) -> bytes:
    r"""A body as the live API sends it: UTF-8, non-ASCII text as it is (not as escapes).

    Text that is not valid Unicode reaches a tap as it does from the live API: a stored
    ``"\udcff"`` (Python's ``surrogateescape`` for the byte 0xff) is sent as that raw, invalid
    UTF-8 byte, and any other lone surrogate (``"\ud83d"``, half an emoji) as its JSON escape.
    """
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "zendesk-simulator")


def render(event: dict[str, Any], comments: bool, in_effect: tuple[Redaction, ...] = ()) -> dict[str, Any]:
    """Render one stored event, with full comments (as they read now) when the sideload is asked for."""
    if "child_events" not in event:
        return event
    out = dict(event)
    children = []
    for child in event["child_events"]:
        if isinstance(child, dict) and "_full" in child and comments:
            children.append(redaction_rules.current(child["_full"], in_effect) if in_effect else child["_full"])
        else:
            children.append({k: v for k, v in child.items() if k != "_full"} if isinstance(child, dict) else child)
    out["child_events"] = children
    return out
