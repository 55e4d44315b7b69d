"""Which credentials the tap sends, chosen from the settings.

Password Basic auth is gone from Zendesk (2026), so only an API token (Basic, user
``{email}/token``) and an OAuth access token (Bearer) are offered. The SDK's authenticators
do the header work; this module only picks one and names it for messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from singer_sdk.authenticators import (
    APIAuthenticatorBase,
    BasicAuthenticator,
    BearerTokenAuthenticator,
)

if TYPE_CHECKING:
    from tap_zendesk_ticket_events.settings import Settings


def build_authenticator(settings: Settings) -> APIAuthenticatorBase:
    """Return the authenticator for the configured auth method."""
    if settings.auth_method == "api_token":
        return BasicAuthenticator(username=f"{settings.email}/token", password=settings.api_token or "")
    return BearerTokenAuthenticator(token=settings.access_token or "")
