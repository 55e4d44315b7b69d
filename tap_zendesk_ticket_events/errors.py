"""Errors the tap reports to a person as one line, and how HTTP answers map to them."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class TapError(Exception):
    """A failure a person must act on; its message is the whole story, on one line."""


class ConfigError(TapError):
    """A setting is missing, malformed or inconsistent; raised before any request."""


#: Where a Zendesk admin makes and fixes OAuth clients.
OAUTH_CLIENTS_PAGE = "Admin Center > Apps and integrations > APIs > OAuth clients"


def describe_http_failure(response: requests.Response, auth_settings: str, auth_method: str = "") -> str:
    """Say what a non-retriable answer means for the person running the tap.

    The message names the status and Zendesk's own ``error`` text, never the URL's query or
    a header, so nothing secret can slip in. With OAuth client credentials a 403 has two
    causes the person can fix, each in its own place: a scope missing from ``oauth_scopes``
    (Zendesk names it), or a client made by a user who is not an admin.
    """
    status = response.status_code
    detail = zendesk_error_text(response)
    if status == HTTPStatus.FORBIDDEN and auth_method == "oauth_client_credentials":
        return client_credentials_forbidden(detail)
    if status == HTTPStatus.UNAUTHORIZED:
        return (
            f"Zendesk refused the credentials (401 {detail}): check {auth_settings}; "
            "the user must be an admin of the account."
        )
    if status == HTTPStatus.FORBIDDEN:
        return (
            f"Zendesk denied access (403 {detail}): the incremental export needs an admin "
            f"role (and the OAuth scope 'read'); check {auth_settings}."
        )
    if status == HTTPStatus.NOT_FOUND:
        return f"No help desk answered at this address (404 {detail}): check the settings 'subdomain' or 'api_url'."
    return f"Zendesk answered {status} {detail} to the export request."


def client_credentials_forbidden(detail: str) -> str:
    """A 403 to a client-credentials token: the scope it lacks, or the admin the client needs."""
    if "scope" in detail.lower():
        return (
            f"Zendesk denied access (403 {detail}): the OAuth token lacks a scope this request needs: add it to the "
            "setting 'oauth_scopes' (space-separated; unset, the tap asks for what it needs)."
        )
    return (
        f"Zendesk denied access (403 {detail}): the incremental exports are for admins, and a client-credentials "
        "token acts as the user who created the OAuth client: have an admin create a client of kind "
        f"\"Confidential\" in {OAUTH_CLIENTS_PAGE}, and set 'client_id' and 'client_secret' to its identifier "
        "and secret."
    )


def zendesk_error_text(response: requests.Response) -> str:
    """Zendesk's error text from a JSON body, shortened to fit one line."""
    try:
        body = response.json()
    except ValueError:
        return (response.reason or "").strip()[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("title") or error.get("message")
    description = body.get("description") if isinstance(body, dict) else None
    text = ": ".join(str(part) for part in (error, description) if part)
    return " ".join(text.split())[:200] or (response.reason or "")
