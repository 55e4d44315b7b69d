"""What both OAuth grants share: the token endpoint's path, when a token is due, and its answers.

The refresh grant (``auth.py``) and the client-credentials grant (``client_credentials.py``)
post to the same endpoint, read the same answers and renew a token by the same margin; the
rules live here once, with no clock of their own (each grant reads its own), so that neither
grant's module imports the other.
"""

from __future__ import annotations

import sys
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import requests
from singer_sdk.authenticators import APIAuthenticatorBase

from tap_zendesk_ticket_events.errors import TapError, describe_connection_failure
from tap_zendesk_ticket_events.retry import with_retries

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    import logging

    from backoff.types import Details

    from tap_zendesk_ticket_events.settings import Settings

TOKEN_PATH = "/oauth/tokens"  # noqa: S105 - a URL path, not a password
#: Renew when less than this remains of the access token's life...
REFRESH_MARGIN_SECONDS = 60.0
#: ...or less than this fraction of its lifetime, whichever is smaller (short-lived tokens).
REFRESH_MARGIN_FRACTION = 0.1


class TransientTokenFailure(Exception):
    """The token endpoint failed in a way a retry can fix; the message holds no secret."""

    def __init__(self, detail: str, response: requests.Response | None = None) -> None:
        super().__init__(detail)
        self.response = response


class OAuthBearerAuthenticator(APIAuthenticatorBase):
    """Bearer auth with a token of the moment, and one re-send after a 401: what both grants do.

    Each grant says how it keeps a live token (``_current_token``) and what it does when Zendesk
    refuses one (``_token_after_refusal``); the request side is the same for both. The re-send
    goes straight to the adapter that sent the refused request (the export budget's, see
    throttle.py), as requests' own ``HTTPDigestAuth`` does, so this hook does not run on its
    answer: a second 401 reaches the stream, which fails with its one-line 401 error.
    """

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger
        self._settings = settings
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._token_url = settings.base_url + TOKEN_PATH
        # Not the stream's session and its throttled adapter: token calls are not export requests.
        self._session = requests.Session()
        self._mutex = threading.Lock()

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
        """On a 401, a token the grant vouches for, and the request re-sent once on the same connection.

        Any 401 counts, not only one saying "expired": Zendesk answers a deleted token (another
        run refreshed) like an expired one.
        """
        if response.status_code != HTTPStatus.UNAUTHORIZED:
            return response
        used = bearer_token(response.request)
        self.logger.info(
            "Zendesk refused the OAuth access token (401 %s); getting a new one and retrying the request once.",
            oauth_error_text(response, self._secrets()),
        )
        with self._mutex:
            token = self._token_after_refusal(used)
        _ = response.content  # read the body so the connection can carry the re-send
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        return answer

    # --- the token endpoint --------------------------------------------------------------

    def _ask_token(self, grant: dict[str, str], *, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
        """POST ``grant`` (with the client's id and secret), retrying transient failures.

        The answer's JSON object; a refusal is the grant's one-line ``TapError`` (``_refused``),
        and ``secrets`` (the grant's own, such as the refresh token sent) stay out of it.
        """
        retrying = with_retries(
            self._post_grant,
            (TransientTokenFailure,),
            on_backoff=self._log_retry,
            wait_limit=self._settings.retry_wait_limit,
        )
        try:
            return retrying(grant, secrets)
        except TransientTokenFailure as exc:
            msg = f"Giving up on the OAuth token request after repeated failures: {exc}"
            raise TapError(msg) from None
        except (ConnectionResetError, requests.exceptions.RequestException) as exc:
            settings = self._settings
            msg = describe_connection_failure(
                exc, base_url=settings.base_url, setting=settings.address_setting, request="OAuth token request"
            )
            raise TapError(msg) from None

    def _post_grant(self, grant: dict[str, str], secrets: tuple[str, ...]) -> dict[str, Any]:
        response = self._session.post(
            self._token_url,
            json={**grant, "client_id": self._client_id, "client_secret": self._client_secret},
            headers={"Accept": "application/json"},
            timeout=self._settings.request_timeout,
            allow_redirects=False,  # a redirect could carry the secret to another host
        )
        status = response.status_code
        body = json_object(response)
        if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
            access = body.get("access_token") if body else None
            if body is None or not isinstance(access, str) or not access:
                # A proxy's error page or a cut body: nothing was granted that a retry would lose.
                raise TransientTokenFailure(f"{status} with an unusable body", response)
            return body
        detail = oauth_error_text(response, self._secrets(*secrets), body)
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise TransientTokenFailure(f"{status} {detail}".strip(), response)
        raise self._refused(status, detail, body.get("error") if body else None)

    def _log_retry(self, details: Details) -> None:
        exc = details.get("exception")
        cause = str(exc) if isinstance(exc, TransientTokenFailure) else type(exc).__name__
        self.logger.warning(
            "OAuth token request failed (%s); retrying in %.1f s (try %d).", cause, details["wait"], details["tries"]
        )

    # --- what each grant says ---------------------------------------------------------------

    def _refused(self, status: int, detail: str, error: object) -> TapError:
        """The one-line error for a token request Zendesk refused (``error``: its OAuth error code)."""
        raise NotImplementedError

    def _current_token(self) -> str:
        """The access token to send now (the grant keeps it live)."""
        raise NotImplementedError

    def _token_after_refusal(self, used: str | None) -> str:
        """Under the mutex: the token to re-send with, after Zendesk refused ``used``."""
        raise NotImplementedError

    def _secrets(self, *more: str) -> tuple[str, ...]:
        """Every secret the grant holds (and ``more``), kept out of every line it writes."""
        raise NotImplementedError


def margin_seconds(lifetime: float | None) -> float:
    """How long before its expiry a token is renewed: a minute, less for short-lived tokens."""
    if lifetime is None:
        return REFRESH_MARGIN_SECONDS
    return min(REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_FRACTION * lifetime)


def bearer_token(request: requests.PreparedRequest) -> str | None:
    scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
    return token if scheme == "Bearer" and token else None


def positive_seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def oauth_error_text(response: requests.Response, secrets: tuple[str, ...], body: dict[str, Any] | None = None) -> str:
    """``error: error_description`` of an OAuth answer, on one line, with no secret in it."""
    if body is None:
        body = json_object(response)
    parts = [body.get("error"), body.get("error_description") or body.get("description")] if body else []
    text = ": ".join(str(p) for p in parts if p and isinstance(p, (str, int)))
    text = " ".join(text.split()) or (response.reason or "").strip()
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text[:200]
