"""What both OAuth grants share: the token endpoint's path, when a token is due, and its answers.

The refresh grant (``auth.py``) and the client-credentials grant (``client_credentials.py``)
post to the same endpoint, read the same answers and renew a token by the same margin; the
rules live here once, with no clock of their own (each grant reads its own), so that neither
grant's module imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

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
