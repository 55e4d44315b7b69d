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


def describe_http_failure(response: requests.Response, auth_settings: str) -> str:
    """Say what a non-retriable answer means for the person running the tap.

    The message names the status and Zendesk's own ``error`` text, never the URL's query or
    a header, so nothing secret can slip in.
    """
    status = response.status_code
    detail = zendesk_error_text(response)
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
