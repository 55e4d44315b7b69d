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
import time
from typing import TYPE_CHECKING, Any

from singer_sdk.authenticators import (
    APIAuthenticatorBase,
    BasicAuthenticator,
    BearerTokenAuthenticator,
)

from tap_zendesk_ticket_events.client_credentials import ClientCredentialsAuthenticator
from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.oauth_common import (
    OAuthBearerAuthenticator,
    margin_seconds,
)
from tap_zendesk_ticket_events.oauth_common import positive_seconds as _positive_seconds
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


class OAuthRefreshAuthenticator(OAuthBearerAuthenticator):
    """Bearer auth with a rotating refresh token, shared through the token store."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, logger)
        if not (settings.refresh_token and settings.client_id and settings.client_secret):
            msg = "OAuth refresh needs 'refresh_token', 'client_id' and 'client_secret'."
            raise TapError(msg)
        self._refresh_token = settings.refresh_token
        self.store = open_store(settings)
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._lifetime: float | None = None
        self._stamp: object = None
        self._store_lost_said = False

    # --- keeping a live token ------------------------------------------------------------

    @override
    def _token_after_refusal(self, used: str | None) -> str:
        """After a 401: the store's newer token, or a refresh (``used`` is stale either way)."""
        self._sync_with_store(stale=used)
        assert self._access_token is not None
        return self._access_token

    @override
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
        return self._ask_token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, secrets=(refresh_token,)
        )

    @override
    def _refused(self, status: int, detail: str, error: object) -> TapError:
        if error == "invalid_grant":
            return InvalidGrant(detail, f"The OAuth refresh token is no longer valid ({detail}).")
        if error in {"invalid_client", "unauthorized_client"}:
            msg = (
                f"Zendesk refused the OAuth client ({status} {detail}): "
                "check the settings 'client_id' and 'client_secret'."
            )
            return TapError(msg)
        msg = (
            f"Zendesk answered {status} {detail} to the OAuth token request: "
            "check the settings 'refresh_token', 'client_id' and 'client_secret'."
        )
        return TapError(msg)

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

    @override
    def _secrets(self, *more: str) -> tuple[str, ...]:
        """Every secret this authenticator knows, to scrub from text quoted in messages."""
        known = (self._refresh_token, self._client_secret, self._access_token or "", *more)
        return tuple(s for s in known if s)


def _expiring(expires_at: float | None, lifetime: float | None) -> bool:
    """True when less than the refresh margin remains (never, when nobody gave an expiry)."""
    if expires_at is None:
        return False
    return time.time() >= expires_at - margin_seconds(lifetime)
