"""Which credentials the tap sends, and how rotating OAuth tokens are kept alive.

Password Basic auth is gone from Zendesk (2026) and API tokens follow (2027-04-30), so four
methods are offered: an API token (Basic, user ``{email}/token``), a fixed OAuth access token
(Bearer), OAuth refresh (``refresh_token`` + ``client_id`` + ``client_secret``), and OAuth
client credentials (``client_id`` + ``client_secret`` alone: ``client_credentials.py``, which
keeps nothing; what both OAuth grants share is in ``oauth_common.py``).

OAuth refresh is the one that runs unattended, and Zendesk makes it delicate: access tokens
expire (30 minutes by default), and every refresh **rotates** the refresh token, deleting the
old pair. A refresh whose new refresh token is not kept works once and then fails forever
with ``invalid_grant``; two runs that each refresh keep deleting each other's access token.
So :class:`OAuthRefreshAuthenticator`:

- keeps the tokens in a :class:`~tap_zendesk_ticket_events.token_store.TokenStore` file,
  written atomically *before* a new access token is used, so no crash can lose a rotation;
- refreshes only under the store's exclusive lock, after re-reading the store: if another
  run already refreshed, it takes that run's access token instead of refreshing again;
- refreshes shortly before ``expires_in`` runs out, and on a 401 retries the request once
  with a fresh token (a ``response`` hook, as requests' own ``HTTPDigestAuth`` does), the
  re-send going through the adapter that sent the refused request, and so drawing on the
  export budget mounted there like every other export request.

Token requests (``POST /oauth/tokens``) do **not** draw on the throttle: Zendesk's 10-per-
minute budget counts incremental export requests only, and a token call is not one. They
happen once per token lifetime, and a refresh waiting behind a full export budget could let
the token it replaces expire. Their transient failures (429, 5xx, dropped connections,
timeouts, unusable bodies) are retried as export requests are, honouring ``Retry-After``.

No token or secret is ever logged, raised or written anywhere but the store.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import requests
from singer_sdk.authenticators import (
    APIAuthenticatorBase,
    BasicAuthenticator,
    BearerTokenAuthenticator,
)

from tap_zendesk_ticket_events.client_credentials import ClientCredentialsAuthenticator
from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.oauth_common import (
    TOKEN_PATH,
    TransientTokenFailure,
    margin_seconds,
)
from tap_zendesk_ticket_events.oauth_common import bearer_token as _bearer_token
from tap_zendesk_ticket_events.oauth_common import json_object as _json_object
from tap_zendesk_ticket_events.oauth_common import oauth_error_text as _oauth_error_text
from tap_zendesk_ticket_events.oauth_common import positive_seconds as _positive_seconds
from tap_zendesk_ticket_events.retry import with_retries
from tap_zendesk_ticket_events.token_store import (
    SEEDS_KEPT,
    FileTokenStore,
    LegacyFile,
    PostgresLocation,
    StoredTokens,
    StoreOwner,
    TokenStore,
    account_name,
    fingerprint,
    legacy_store_path,
)

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from backoff.types import Details

    from tap_zendesk_ticket_events.settings import Settings


logger = logging.getLogger(__name__)


def build_authenticator(settings: Settings) -> APIAuthenticatorBase:
    """Return the authenticator for the configured auth method."""
    if settings.auth_method == "api_token":
        return BasicAuthenticator(username=f"{settings.email}/token", password=settings.api_token or "")
    if settings.auth_method == "oauth_refresh":
        return OAuthRefreshAuthenticator(settings)
    if settings.auth_method == "oauth_client_credentials":
        return ClientCredentialsAuthenticator(settings)
    return BearerTokenAuthenticator(token=settings.access_token or "")


class InvalidGrant(TapError):
    """Zendesk refused the refresh token (``invalid_grant``); ``detail`` is its text, no secret."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(message)
        self.detail = detail


def open_store(settings: Settings) -> TokenStore:
    """The token store the settings name: a file (the default), or a row in PostgreSQL."""
    location = settings.oauth_token_store
    if isinstance(location, PostgresLocation):
        from tap_zendesk_ticket_events.token_store_pg import PostgresTokenStore  # noqa: PLC0415 - optional extra

        return PostgresTokenStore(location, account=account_name(settings.base_url), client_id=settings.client_id or "")
    if location is None:
        msg = "OAuth refresh needs a token store (setting 'oauth_token_store')."
        raise TapError(msg)
    legacy = None
    if settings.oauth_token_store_is_default and settings.refresh_token:
        # The default name of older releases, shared by every client of the host: taken over once.
        legacy = LegacyFile(legacy_store_path(settings.base_url, os.environ), fingerprint(settings.refresh_token))
    return FileTokenStore(
        location,
        private_dir=settings.oauth_token_store_is_default,
        owner=StoreOwner.of(settings.base_url, settings.client_id or ""),
        legacy=legacy,
    )


class OAuthRefreshAuthenticator(APIAuthenticatorBase):
    """Bearer auth with a rotating refresh token, shared through the token store."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        if not (settings.refresh_token and settings.client_id and settings.client_secret):
            msg = "OAuth refresh needs 'refresh_token', 'client_id' and 'client_secret'."
            raise TapError(msg)
        self.logger = logger
        self._settings = settings
        self._refresh_token = settings.refresh_token
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self.store = open_store(settings)
        self._token_url = settings.base_url + TOKEN_PATH
        # Not the stream's session and its throttled adapter: token calls are not export requests.
        self._session = requests.Session()
        self._mutex = threading.Lock()
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._lifetime: float | None = None
        self._stamp: object = None
        self._store_lost_said = False

    # --- what requests see -------------------------------------------------------------

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Put a live access token on the request, and watch its answer for a 401.

        Called when the request is prepared and again before each try, so a retry after a
        long wait goes out with the token of the moment. The hook is registered once.
        """
        request.headers["Authorization"] = f"Bearer {self._current_token()}"
        hooks = request.hooks.setdefault("response", [])
        if self._retry_after_401 not in hooks:
            hooks.append(self._retry_after_401)
        return request

    def _retry_after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """On a 401, get a fresh token and re-send the request once, on the same connection.

        Any 401 counts, not only one saying "expired": Zendesk answers a deleted token (another
        run refreshed) like an expired one. The re-send goes straight to the adapter, so this
        hook does not run on its answer: a second 401 reaches the stream, which fails with
        its usual one-line 401 error.
        """
        if response.status_code != HTTPStatus.UNAUTHORIZED:
            return response
        used = _bearer_token(response.request)
        self.logger.info(
            "Zendesk refused the OAuth access token (401 %s); getting a fresh one and retrying the request once.",
            _oauth_error_text(response, self._secrets()),
        )
        with self._mutex:
            self._sync_with_store(stale=used)
            token = self._access_token
        _ = response.content  # read the body so the connection can carry the re-send
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        # The adapter that sent the refused request: the stream's throttled one (throttle.py).
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        return answer

    # --- keeping a live token ------------------------------------------------------------

    def _current_token(self) -> str:
        """The access token to send now: ours, another run's newer one, or a fresh one."""
        with self._mutex:
            if self._access_token is None:
                self._sync_with_store(stale=None)
            elif _expiring(self._expires_at, self._lifetime):
                self._sync_with_store(stale=self._access_token)
            elif self._store_changed():
                # Another run (or stream) wrote the store: look at it.
                self._sync_with_store(stale=None)
            assert self._access_token is not None
            return self._access_token

    def _store_changed(self) -> bool:
        """True when another run wrote the store since we read it.

        A store lost while our token is still live costs nothing yet: the run goes on with that
        token, and stops only when a refresh is due (with the last safe STATE, one line).
        """
        try:
            return self.store.stamp() != self._stamp
        except TapError as exc:
            if not self._store_lost_said:
                self._store_lost_said = True
                self.logger.warning("%s Going on with the current access token until it is due for a refresh.", exc)
            return False

    def _sync_with_store(self, *, stale: str | None) -> None:
        """Under the store's lock: take the store's access token, or refresh.

        The store is re-read after the lock is taken: a run that waited for the lock while
        another refreshed finds a new, live token there and uses it. It refreshes only when
        the stored token is the ``stale`` one (refused or expiring), expiring, or missing.
        """
        with self.store.locked():
            stored = self.store.read()
            if stored is None:
                # A new store (the first run here, or a machine that kept no disk): seeded from
                # the configured token, which a run elsewhere may have rotated away already.
                tokens = self._seed(None)
                self.store.write(tokens)
                origin = "empty"
            elif self._configured_is_new(stored):
                self._try_configured_token(stored)
                return
            else:
                tokens = stored
                origin = "store"
            live = tokens.access_token is not None and not _expiring(tokens.expires_at, tokens.lifetime)
            if live and tokens.access_token != stale:
                if self._access_token is not None and tokens.access_token != self._access_token:
                    self.logger.info(
                        "Using the OAuth access token another run refreshed (token store %s).", self.store.name
                    )
                self._adopt(tokens)
                return
            self._refresh(tokens, origin)

    def _configured_is_new(self, stored: StoredTokens) -> bool:
        """True for a configured refresh token the store has never seen (pasted after invalid_grant, say).

        The store remembers the fingerprints of the configured refresh tokens it started from
        (or refused): one it has seen is older than the rotated token in the store, which wins.
        """
        return (
            fingerprint(self._refresh_token) not in stored.seeded_from and stored.refresh_token != self._refresh_token
        )

    def _seed(self, stored: StoredTokens | None) -> StoredTokens:
        """Tokens that start from the configured refresh token, remembering it among the seeds."""
        seed = fingerprint(self._refresh_token)
        return StoredTokens(
            refresh_token=self._refresh_token,
            access_token=self._settings.access_token or None,
            expires_at=None,
            lifetime=None,
            seeded_from=((*stored.seeded_from, seed) if stored else (seed,))[-SEEDS_KEPT:],
        )

    def _try_configured_token(self, stored: StoredTokens) -> None:
        """A new configured refresh token replaces the store only once Zendesk has accepted it.

        A mistyped token must not cost the grant: until Zendesk accepts the new one, the store
        keeps its own token. If Zendesk refuses the configured one, the store's is used (and the
        refused one remembered, so later runs do not try it again).
        """
        self.logger.info(
            "The configured 'refresh_token' is new to the token store %s: trying it; the store is replaced "
            "only if Zendesk accepts it.",
            self.store.name,
        )
        try:
            self._refresh(self._seed(stored), "configured")
        except InvalidGrant as exc:
            self.logger.warning(
                "Zendesk refused the configured 'refresh_token' (%s); the token store %s keeps its own refresh "
                "token, which this run uses. Fix or remove 'refresh_token' in the settings.",
                exc.detail,
                self.store.name,
            )
            kept = dataclasses.replace(stored, seeded_from=self._seed(stored).seeded_from)
            self.store.write(kept)
            live = kept.access_token is not None and not _expiring(kept.expires_at, kept.lifetime)
            if live:
                self._adopt(kept)
            else:
                self._refresh(kept, "store")

    def _adopt(self, tokens: StoredTokens) -> None:
        self._access_token = tokens.access_token
        self._expires_at = tokens.expires_at
        self._lifetime = tokens.lifetime
        self._stamp = self.store.stamp()

    def _refresh(self, tokens: StoredTokens, origin: str) -> None:
        """Trade the refresh token for a new pair; save the pair before using it.

        ``origin``, for the ``invalid_grant`` line: where the refresh token sent came from
        ("empty": the configured one, the store being empty; "store": the store's own;
        "configured": a configured one new to the store).

        The store first proves it can take the answer: Zendesk deletes the old pair when it
        answers, so an answer the store then fails to keep would be the grant lost.
        """
        with self.store.ready_to_save():
            asked_at = time.time()
            try:
                answer = self._request_tokens(tokens.refresh_token)
            except InvalidGrant as exc:
                raise InvalidGrant(exc.detail, self._invalid_grant_message(exc.detail, origin)) from None
            self._save_answer(tokens, answer, asked_at)

    def _save_answer(self, tokens: StoredTokens, answer: dict[str, Any], asked_at: float) -> None:
        lifetime = _positive_seconds(answer.get("expires_in"))
        rotated = answer.get("refresh_token")
        fresh = StoredTokens(
            refresh_token=rotated if isinstance(rotated, str) and rotated else tokens.refresh_token,
            access_token=answer["access_token"],
            # Counted from before the request: never later than Zendesk's own clock says.
            expires_at=asked_at + lifetime if lifetime is not None else None,
            lifetime=lifetime,
            seeded_from=tokens.seeded_from,
        )
        # Before anything else: the old refresh token is already deleted at Zendesk.
        self.store.write(fresh)
        self._adopt(fresh)
        self.logger.info(
            "Refreshed the OAuth access token (valid for %s); the rotated refresh token is saved in %s.",
            f"{lifetime:.0f} s" if lifetime is not None else "an unstated time",
            self.store.name,
        )

    # --- the token endpoint --------------------------------------------------------------

    def _request_tokens(self, refresh_token: str) -> dict[str, Any]:
        """POST the refresh grant, retrying transient failures; one-line TapError otherwise."""
        retrying = with_retries(self._post_refresh_grant, (TransientTokenFailure,), on_backoff=self._log_retry)
        try:
            return retrying(refresh_token)
        except TransientTokenFailure as exc:
            msg = f"Giving up on the OAuth token request after repeated failures: {exc}"
            raise TapError(msg) from None
        except (ConnectionResetError, requests.exceptions.RequestException) as exc:
            msg = f"Giving up on the OAuth token request: {type(exc).__name__} talking to {self._settings.base_url}"
            raise TapError(msg) from None

    def _post_refresh_grant(self, refresh_token: str) -> dict[str, Any]:
        response = self._session.post(
            self._token_url,
            json={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=self._settings.request_timeout,
            allow_redirects=False,  # a redirect could carry the grant to another host
        )
        status = response.status_code
        body = _json_object(response)
        if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
            access = body.get("access_token") if body else None
            if body is None or not isinstance(access, str) or not access:
                # A proxy's error page or a cut body: nothing was granted that a retry would lose.
                raise TransientTokenFailure(f"{status} with an unusable body", response)
            return body
        detail = _oauth_error_text(response, self._secrets(refresh_token), body)
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise TransientTokenFailure(f"{status} {detail}".strip(), response)
        error = body.get("error") if body else None
        if error == "invalid_grant":
            raise InvalidGrant(detail, f"The OAuth refresh token is no longer valid ({detail}).")
        if error in {"invalid_client", "unauthorized_client"}:
            msg = (
                f"Zendesk refused the OAuth client ({status} {detail}): "
                "check the settings 'client_id' and 'client_secret'."
            )
            raise TapError(msg)
        msg = (
            f"Zendesk answered {status} {detail} to the OAuth token request: "
            "check the settings 'refresh_token', 'client_id' and 'client_secret'."
        )
        raise TapError(msg)

    def _invalid_grant_message(self, detail: str, origin: str) -> str:
        """What a refused refresh token means, told from where it came; never a guess stated as fact."""
        again = "authorize the OAuth client again (docs/oauth.md shows how) and set 'refresh_token' to the new one"
        if origin == "empty":
            shared = isinstance(self.store, FileTokenStore)
            advice = (
                " Machines that do not keep their disk need a shared 'oauth_token_store' (a PostgreSQL URL: "
                "docs/production.md, 'On Kubernetes, Airflow, or any machine that does not keep its disk');"
                if shared
                else ""
            )
            return (
                f"The OAuth refresh token is no longer valid ({detail}); the token store {self.store.name} was "
                "empty, so it was the configured 'refresh_token', which a run elsewhere probably rotated already "
                f"(every refresh replaces it).{advice} {again}."
            )
        taken_over = self.store.taken_over_from if isinstance(self.store, FileTokenStore) else None
        if taken_over is not None:
            return (
                f"The OAuth refresh token is no longer valid ({detail}); it came from {taken_over}, the token store "
                "older releases shared between every OAuth client and account of the host, so it may be another "
                f"client's, or was rotated by a run that used that file; {again} (the token store {self.store.name} "
                "is replaced once Zendesk accepts it)."
            )
        return (
            f"The OAuth refresh token is no longer valid ({detail}); it is the one the token store "
            f"{self.store.name} holds, saved by the last refresh through that store, so either a run that does "
            "not use this store rotated it (another machine, a copy of the store, another 'oauth_token_store') "
            f"or the grant was revoked; {again} (the token store is replaced once Zendesk accepts it)."
        )

    def _log_retry(self, details: Details) -> None:
        exc = details.get("exception")
        cause = str(exc) if isinstance(exc, TransientTokenFailure) else type(exc).__name__
        self.logger.warning(
            "OAuth token request failed (%s); retrying in %.1f s (try %d).", cause, details["wait"], details["tries"]
        )

    def _secrets(self, *more: str) -> tuple[str, ...]:
        """Every secret this authenticator knows, to scrub from text quoted in messages."""
        known = (self._refresh_token, self._client_secret, self._access_token or "", *more)
        return tuple(s for s in known if s)


def _expiring(expires_at: float | None, lifetime: float | None) -> bool:
    """True when less than the refresh margin remains (never, when nobody gave an expiry)."""
    if expires_at is None:
        return False
    return time.time() >= expires_at - margin_seconds(lifetime)
