"""Zendesk's OAuth token endpoint: rotating refresh tokens and expiring access tokens.

``POST /oauth/tokens`` with the refresh grant rotates the pair (the old refresh token and its
access token die at once), access tokens expire, and a dead one is answered 401
``invalid_token`` as Zendesk does; an unknown refresh token gets ``invalid_grant``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import count as counter
from typing import TYPE_CHECKING, Any

from zendesk_simulator.faults import STATUS_TEXT

if TYPE_CHECKING:
    from collections.abc import Callable

    from zendesk_simulator.envelopes import Request

OAUTH_TOKEN_PATH = "/oauth/tokens"


CLIENT_ID = "sim-oauth-client"


CLIENT_SECRET = "sim-client-secret-9876543210"


INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}


@dataclass
class OAuthServer:
    """Zendesk's OAuth token endpoint with rotating refresh tokens and expiring access tokens.

    Tokens are random and numbered by pair (generation); every one ever issued is kept in
    ``issued`` so tests can check that none leaks into the tap's output.
    """

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    other_clients: dict[str, str] = field(default_factory=dict)
    """Further OAuth clients of the account (client_id -> secret): each refresh token belongs to
    the client it was issued to, and another client presenting it gets ``invalid_grant``."""
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
    owners: dict[str, str] = field(default_factory=dict)
    """Live refresh token -> the client_id it was issued to."""
    refreshed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _generations: Any = field(default_factory=lambda: counter(1))

    def issue_tokens(self, client_id: str | None = None) -> tuple[str, str]:
        """A new (access_token, refresh_token) pair, as authorizing the client gives one."""
        with self.lock:
            return self._issue(client_id or self.client_id)

    def _issue(self, client_id: str) -> tuple[str, str]:
        generation = next(self._generations)
        access = f"sim-at-{generation}-{secrets.token_hex(8)}"
        refresh = f"sim-rt-{generation}-{secrets.token_hex(8)}"
        lifetime = self.token_lifetime if self.actual_lifetime is None else self.actual_lifetime
        self.access_tokens[access] = (generation, time.monotonic() + lifetime)
        self.refresh_tokens[refresh] = generation
        self.owners[refresh] = client_id
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
        client_id = str(body.get("client_id"))
        secret = self.client_secret if client_id == self.client_id else self.other_clients.get(client_id)
        if secret is None or body.get("client_secret") != secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}, {}
        with self.lock:
            refresh_token = str(body.get("refresh_token"))
            # Another client's refresh token is refused, and stays its owner's.
            mine = self.owners.get(refresh_token) == client_id
            generation = self.refresh_tokens.pop(refresh_token, 0) if mine else 0
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
            access, refresh = self._issue(client_id)
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
