"""Zendesk's OAuth token endpoint: rotating refresh tokens, client credentials, expiring tokens.

``POST /oauth/tokens`` with the refresh grant rotates the pair (the old refresh token and its
access token die at once), access tokens expire, and a dead one is answered 401
``invalid_token`` as Zendesk does; an unknown refresh token gets ``invalid_grant``.

The client-credentials grant (confidential clients only) answers an access token with the
scopes asked for and no refresh token; its ``expires_in`` (Zendesk takes 300 s to 2 days) is
honoured. Each token carries its scopes, and ``scope_refusal`` answers 403 to a request its
scopes do not cover; a token of a client whose creator is not an admin is refused the exports.
Zendesk grants any scope asked for and refuses later (403), as its API reference says. The
403 texts are the simulator's: Zendesk's exact wording for a missing scope is not recorded.
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


#: What the client-credentials grant answers by default (the live recording's ``expires_in``).
CLIENT_CREDENTIALS_LIFETIME = 1799
#: The range of ``expires_in`` Zendesk accepts in a client-credentials request.
EXPIRES_IN_RANGE = (300, 172_800)
#: The scope every export path needs (``read`` covers it too).
EXPORT_SCOPE = "tickets:read"  # the exports and a ticket's comments alike
NOT_AN_ADMIN = {
    "error": "Forbidden",
    "description": (
        "You do not have access to this page. Please contact the account owner of this help desk for further help."
    ),
}
GRANT_NOT_ALLOWED = {
    "error": "unauthorized_client",
    "error_description": "The client is not authorized to request an access token using this method.",
}


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
    client_credentials_lifetime: float = CLIENT_CREDENTIALS_LIFETIME
    """The ``expires_in`` of a client-credentials token when the request names none."""
    confidential: bool = True
    """The client kind: only a confidential client may use the client-credentials grant."""
    client_credentials_enabled: bool = True
    """False: the account does not offer the grant (``unsupported_grant_type``)."""
    creator_is_admin: bool = True
    """Whether the user who created the client is an admin: its client-credentials tokens act
    as that user, and the incremental exports are for admins only."""
    required_scopes: dict[str, str] = field(default_factory=dict)
    """Path -> the scope it needs, where not ``EXPORT_SCOPE`` (the exports' and a ticket's comments')."""
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
    scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    """Issued access token -> its scopes."""
    client_credentials_tokens: set[str] = field(default_factory=set)
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
        self.scopes[access] = frozenset({"read"})  # the README's authorization asks for 'read'
        self.refresh_tokens[refresh] = generation
        self.owners[refresh] = client_id
        self.issued += [access, refresh]
        return access, refresh

    def scope_refusal(self, auth: str, path: str, *, export: bool) -> tuple[int, Any, dict[str, str]] | None:
        """The 403 for an issued token whose scopes do not cover ``path``, or, on an ``export``
        (admins only), whose client's creator is not an admin.
        """
        scheme, _, value = auth.partition(" ")
        with self.lock:
            scopes = self.scopes.get(value) if scheme == "Bearer" else None
            client_credentials = value in self.client_credentials_tokens
        if scopes is None:
            return None
        needed = self.required_scopes.get(path, EXPORT_SCOPE)
        if needed not in scopes and not (needed.endswith(":read") and "read" in scopes):
            return (
                403,
                {"error": "Forbidden", "description": f"You are missing the following required scopes: {needed}"},
                {},
            )
        if export and client_credentials and not self.creator_is_admin:
            return 403, NOT_AN_ADMIN, {}
        return None

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
        grant = str(body.get("grant_type", ""))
        record.params = {"grant_type": grant, "scope": str(body.get("scope", ""))}  # never a secret
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
        if grant not in {"refresh_token", "client_credentials"} or (
            grant == "client_credentials" and not self.client_credentials_enabled
        ):
            return 400, {"error": "unsupported_grant_type", "error_description": "The grant type is not supported."}, {}
        client_id = str(body.get("client_id"))
        secret = self.client_secret if client_id == self.client_id else self.other_clients.get(client_id)
        if secret is None or body.get("client_secret") != secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}, {}
        if grant == "client_credentials":
            return self._client_credentials(body, record)
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

    def _client_credentials(self, body: dict[str, str], record: Request) -> tuple[int, Any, dict[str, str]]:
        """An access token for the client's creator, with the scopes asked for; no refresh token."""
        if not self.confidential:
            return 400, GRANT_NOT_ALLOWED, {}
        scope = str(body.get("scope") or "read").split()  # Zendesk grants whatever is asked
        lifetime: float = self.client_credentials_lifetime
        if body.get("expires_in") is not None:
            try:
                lifetime = int(body["expires_in"])
            except ValueError:
                lifetime = 0
            if not EXPIRES_IN_RANGE[0] <= lifetime <= EXPIRES_IN_RANGE[1]:
                return 400, {"error": "invalid_request", "error_description": "expires_in is out of range."}, {}
        with self.lock:
            generation = next(self._generations)
            access = f"sim-cc-{generation}-{secrets.token_hex(8)}"
            actual = lifetime if self.actual_lifetime is None else self.actual_lifetime
            self.access_tokens[access] = (generation, time.monotonic() + actual)
            self.scopes[access] = frozenset(scope)
            self.client_credentials_tokens.add(access)
            self.issued.append(access)
            record.oauth_generation = generation
        return (
            200,
            {"access_token": access, "token_type": "bearer", "scope": " ".join(scope), "expires_in": lifetime},
            {},
        )
