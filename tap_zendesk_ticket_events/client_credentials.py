"""OAuth client credentials: access tokens the OAuth client asks for itself, kept in memory only.

Since 2025-03-04 a **confidential** Zendesk OAuth client may post ``grant_type:
client_credentials`` with its ``client_id``, ``client_secret`` and the scopes it wants to
``/oauth/tokens``, and gets an access token acting as the user who created the client (an admin,
for the incremental exports), with an ``expires_in`` (1799 s seen live) and no refresh token.
Nothing rotates, so there is nothing to keep: every run, on any worker, any number at once, asks
for its own token. :class:`ClientCredentialsAuthenticator`:

- asks for a token before the first request, and for a new one shortly before ``expires_in``
  runs out (the margin of ``oauth_common``), on its own monotonic clock;
- on a 401, asks for a new token and re-sends the refused request once, through the adapter
  that sent it (the export budget's), as the refresh grant does (see ``auth.py``);
- writes nothing anywhere: no file, no table; the token lives in this object.

Token requests do not draw on the export budget (see ``auth.py``): they are not export
requests. Their transient failures are retried as export requests are. No token or secret is
logged, raised or written.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import requests

from tap_zendesk_ticket_events.errors import OAUTH_CLIENTS_PAGE as CLIENTS_PAGE
from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.oauth_common import (
    TOKEN_PATH,
    OAuthBearerAuthenticator,
    margin_seconds,
    positive_seconds,
)

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from tap_zendesk_ticket_events.settings import Settings

#: Zendesk's answers saying this client may not use this grant.
GRANT_REFUSED = frozenset({"unauthorized_client", "unsupported_grant_type"})

logger = logging.getLogger(__name__)


class ClientCredentialsAuthenticator(OAuthBearerAuthenticator):
    """Bearer auth with access tokens from the client-credentials grant, renewed before they expire."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, logger)
        if not (settings.client_id and settings.client_secret):
            msg = "OAuth client credentials need 'client_id' and 'client_secret'."
            raise TapError(msg)
        self.logger = logger
        self._settings = settings
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._scope = " ".join(settings.oauth_scopes)
        self._token_url = settings.base_url + TOKEN_PATH
        # Not the stream's session and its throttled adapter: token calls are not export requests.
        self._session = requests.Session()
        self._access_token: str | None = None
        self._renew_at: float | None = None
        """Monotonic time from which the token is renewed before use (None: no expiry given)."""
        self.tokens_asked = 0
        """Tokens received so far: the first is "Got", every later one "Renewed" in the log."""

    # --- keeping a live token ------------------------------------------------------------

    @override
    def _token_after_refusal(self, used: str | None) -> str:
        """After a 401: a new token, unless another request got one since ``used`` was sent."""
        if self._access_token is None or self._access_token == used:
            self._new_token()
        assert self._access_token is not None
        return self._access_token

    @override
    def _current_token(self) -> str:
        with self._mutex:
            due = self._renew_at is not None and time.monotonic() >= self._renew_at
            if self._access_token is None or due:
                self._new_token()
            assert self._access_token is not None
            return self._access_token

    def _new_token(self) -> None:
        """Ask for a token; renew it a margin before ``expires_in`` counted from the asking."""
        asked_at = time.monotonic()  # before the request: never later than Zendesk's own count
        answer = self._request_token()
        lifetime = positive_seconds(answer.get("expires_in"))
        self._access_token = answer["access_token"]
        self._renew_at = asked_at + lifetime - margin_seconds(lifetime) if lifetime is not None else None
        granted = answer.get("scope")
        self.tokens_asked += 1
        self.logger.info(
            "%s an OAuth access token by client credentials (valid for %s; scopes: %s); it is kept in memory only.",
            "Got" if self.tokens_asked == 1 else "Renewed",
            f"{lifetime:.0f} s" if lifetime is not None else "an unstated time",
            granted if isinstance(granted, str) and granted else self._scope,
        )

    # --- the token endpoint --------------------------------------------------------------

    def _request_token(self) -> dict[str, Any]:
        """POST the client-credentials grant, retrying transient failures; one-line TapError otherwise."""
        return self._ask_token({"grant_type": "client_credentials", "scope": self._scope})

    @override
    def _refused(self, status: int, detail: str, error: object) -> TapError:
        return TapError(refusal_message(status, detail, error))

    @override
    def _secrets(self, *more: str) -> tuple[str, ...]:
        """Every secret this authenticator knows, to scrub from text quoted in messages."""
        return tuple(s for s in (self._client_secret, self._access_token or "", *more) if s)


def refusal_message(status: int, detail: str, error: object) -> str:
    """The one line for a token request Zendesk refused: which settings to fix, and where."""
    if error == "invalid_client":
        return (
            f"Zendesk refused the OAuth client ({status} {detail}): check the settings 'client_id' (the client's "
            f"Identifier) and 'client_secret' in {CLIENTS_PAGE}; a secret is shown only once, so if it is lost, "
            "regenerate it there and set the new one."
        )
    if error in GRANT_REFUSED:
        return (
            f"Zendesk does not allow this OAuth client the client-credentials grant ({status} {detail}): in "
            f"{CLIENTS_PAGE}, set the client kind of the client 'client_id' names to \"Confidential\" (or create a "
            "confidential client and set 'client_id' and 'client_secret' to its identifier and secret)."
        )
    return (
        f"Zendesk answered {status} {detail} to the OAuth token request: check the settings 'client_id', "
        "'client_secret' and 'oauth_scopes'."
    )
