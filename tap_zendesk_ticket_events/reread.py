"""Re-reading what a redaction left: a ticket's comments, and one second of the export.

Two requests, each with its own budget:

- ``GET /api/v2/tickets/{id}/comments`` (cursor pages of ``page[size]=100``) finds the redacted
  comment (or the comment that lists a redacted attachment), its audit and that audit's second.
  It draws on the account-wide rate limit (hundreds a minute), not on the incremental exports'
  ten: the request budget of ``throttle.py`` does not count it. A deleted ticket answers 404.
- ``GET /api/v2/incremental/ticket_events?start_time=<the audit's second>&per_page=1`` serves
  that audit again, with its current child events: Zendesk grows a page to hold its whole
  last second, so one request brings every audit of that second. It is an export request:
  the throttle counts it, and the tap counts it apart (``export_requests``).

Both go through the SDK's session (the throttle is mounted there), the stream's authenticator
(an OAuth 401 is refreshed and re-sent by it) and the tap's retry policy (``retry.py``:
``Retry-After`` on 429, backoff on 5xx and dropped connections). A failure that outlasts the
retries ends the run with one line, like a failed page: never a silent skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec
import requests

from tap_zendesk_ticket_events.dates import iso
from tap_zendesk_ticket_events.errors import TapError, describe_http_failure, zendesk_error_text
from tap_zendesk_ticket_events.pages import ExportPage
from tap_zendesk_ticket_events.retry import CONNECTION_FAILURES, MAX_ERROR_TRIES, with_retries

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    from backoff.types import Details

    from tap_zendesk_ticket_events.settings import Settings

#: Zendesk's largest cursor page.
COMMENTS_PAGE_SIZE = 100
#: A ticket with more comments than this many pages is no ticket: refuse to page forever.
MAX_COMMENT_PAGES = 1_000
EXPORT_PATH = "/api/v2/incremental/ticket_events.json"

_decoder = msgspec.json.Decoder()


class _Retriable(Exception):
    """An answer a later try may fix (429, 5xx, an unusable body); its message holds no secret."""

    def __init__(self, detail: str, response: requests.Response) -> None:
        super().__init__(detail)
        self.response = response


@dataclass
class Counts:
    """Requests sent for redactions, by budget."""

    comments_requests: int = 0
    """On the account-wide limit."""
    export_requests: int = 0
    """On the incremental exports' budget (``max_requests_per_minute``)."""


class Rereader:
    """Sends the re-reads of redactions, through the stream's session, auth and retry policy."""

    def __init__(
        self,
        session: requests.Session,
        authenticator: Callable[[requests.PreparedRequest], requests.PreparedRequest],
        settings: Settings,
        *,
        headers: Mapping[str, str] | None = None,
        logger: logging.Logger,
    ) -> None:
        self._session = session
        self._authenticator = authenticator
        self._settings = settings
        self._headers = dict(headers or {})
        self._logger = logger
        self.counts = Counts()

    def comments(self, ticket_id: int) -> list[dict[str, Any]] | None:
        """Every comment of the ticket, as it reads now, oldest first; None for a deleted ticket (404).

        Pages are walked by ``meta.after_cursor`` on the configured host; ``links.next`` is
        never followed, so credentials never leave that host.
        """
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"page[size]": COMMENTS_PAGE_SIZE}
        what = f"the comments of ticket {ticket_id} (a redaction's re-read)"
        for _ in range(MAX_COMMENT_PAGES):
            self.counts.comments_requests += 1
            body = self._get(f"/api/v2/tickets/{ticket_id}/comments.json", params, what, missing_ok=True)
            if body is None:
                return None
            comments = body.get("comments") if isinstance(body, dict) else None
            meta = body.get("meta") if isinstance(body, dict) else None
            if not isinstance(comments, list) or not isinstance(meta, dict):
                msg = f"Zendesk answered {what} without a 'comments' array and 'meta': not a comments page."
                raise TapError(msg)
            found += [c for c in comments if isinstance(c, dict)]
            after = meta.get("after_cursor")
            if not meta.get("has_more") or not isinstance(after, str) or not after:
                return found
            params = {"page[size]": COMMENTS_PAGE_SIZE, "page[after]": after}
        msg = f"Zendesk kept paging {what} past {MAX_COMMENT_PAGES} pages; stopping to avoid a loop."
        raise TapError(msg)

    def export_second(self, second: int, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ticket events of one second (and maybe the next), as the export sends them now.

        ``per_page=1``: the live API grows a page to hold its whole last second, so this is
        one request whatever the second holds. ``params`` adds the run's own (the sideload,
        ``support_type_scope``).
        """
        what = f"the ticket events export at {second} ({iso(second)}) (a redaction's re-read)"
        self.counts.export_requests += 1
        body = self._get(EXPORT_PATH, {**params, "start_time": second, "per_page": 1}, what)
        try:
            page = ExportPage.decode(body, "ticket_events")
        except (TypeError, ValueError) as exc:
            msg = f"Zendesk answered {what} with a page the tap cannot read ({exc})."
            raise TapError(msg) from None
        return page.items

    # --- one request, retried ------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any], what: str, *, missing_ok: bool = False) -> Any:
        """The decoded JSON body of a 2xx answer; None for a 404 when ``missing_ok``."""
        request = requests.Request("GET", self._settings.base_url + path, params=dict(params), headers=self._headers)
        prepared = self._session.prepare_request(request)

        def attempt() -> tuple[requests.Response, Any]:
            # Before each try: an OAuth token may have been refreshed while this one waited.
            self._authenticator(prepared)
            response = self._session.send(prepared, timeout=self._settings.request_timeout, allow_redirects=False)
            status = response.status_code
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise _Retriable(f"{status} {zendesk_error_text(response)}".strip(), response)
            if status >= HTTPStatus.MULTIPLE_CHOICES:
                return response, None
            try:
                return response, _decoder.decode(response.content)
            except msgspec.DecodeError as exc:
                # A truncated or non-JSON body is a transient fault of some proxy: retry it.
                raise _Retriable(f"{status} with an unusable body ({exc})", response) from None

        try:
            response, body = with_retries(attempt, (_Retriable,), on_backoff=self._log_retry)()
        except _Retriable as exc:
            msg = f"Giving up on {what} after repeated failures: {exc}"
            raise TapError(msg) from None
        except CONNECTION_FAILURES as exc:
            host = self._settings.base_url
            msg = f"Giving up on {what} after {MAX_ERROR_TRIES} tries: {type(exc).__name__} talking to {host}"
            raise TapError(msg) from None
        status = response.status_code
        if status == HTTPStatus.NOT_FOUND and missing_ok:
            return None
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
                cause = describe_http_failure(response, self._settings.auth_settings)
            else:
                cause = f"Zendesk answered {status} {zendesk_error_text(response)}".strip() + "."
            msg = f"{cause} (to {what}; set follow_redactions to false to export without re-reads)"
            raise TapError(msg)
        return body

    def _log_retry(self, details: Details) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            self._logger.info(
                "Rate limited by Zendesk on a redaction's re-read (%s); waiting %.1f s (%s).",
                exc,
                details["wait"],
                "Retry-After" if response.headers.get("Retry-After") else "no Retry-After, default",
            )
            return
        cause = str(exc) if response is not None else type(exc).__name__
        self._logger.warning(
            "A redaction's re-read failed (%s); retrying in %.1f s (try %d).", cause, details["wait"], details["tries"]
        )


def served_at(response: requests.Response) -> int | None:
    """When Zendesk served an answer, by its own clock (the ``Date`` header), in epoch seconds."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None
