"""The HTTP base stream for Zendesk's time-based incremental exports.

Everything a time-based export endpoint shares lives here: the request budget, retries that
honour ``Retry-After``, one-line errors, the page rules of ``pages.py`` and a STATE message
after every page, so that a multi-day backfill killed at any point resumes where it was.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
import weakref
from decimal import Decimal
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from tap_zendesk_ticket_events import scope as scope_rules
from tap_zendesk_ticket_events.auth import build_authenticator
from tap_zendesk_ticket_events.errors import TapError, describe_http_failure, zendesk_error_text
from tap_zendesk_ticket_events.page_size import AdaptivePageSize
from tap_zendesk_ticket_events.pages import (
    REPLICATION_KEY,
    Boundary,
    ExportPage,
    PagePlan,
    epoch_of_iso,
    iso,
    plan_page,
)
from tap_zendesk_ticket_events.progress import Progress
from tap_zendesk_ticket_events.retry import MAX_ERROR_TRIES, with_retries
from tap_zendesk_ticket_events.throttle import ThrottledSession

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from backoff.types import Details
    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.tap_base import Tap

    from tap_zendesk_ticket_events.scope import Scope
    from tap_zendesk_ticket_events.settings import Settings
    from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
    from tap_zendesk_ticket_events.throttle import Throttle

AUTH_LABELS = {
    "api_token": "API token (email + api_token)",
    "access_token": "OAuth access token",
    "oauth_refresh": "OAuth with a rotating refresh token",
}
#: Zendesk never serves the last minute; a start this close to now has nothing to export.
RECENT_SECONDS = 61

_decoder = msgspec.json.Decoder()
_NUMBER = re.compile(r"\d+(\.\d*)?")

#: A page request: its start_time, and the page size of a probe (None: the current size).
PageToken = tuple[int, "int | None"]


class _SupersededSDKLines(logging.Filter):
    """Drop the SDK's lines that the tap's own say better, or would say twice.

    - "An unhandled error occurred": the SDK logs it from inside its ``except`` block; the tap's
      ``invoke`` reports every error once, as its own single line.
    - "Starting incremental sync ... with bookmark value": it shows the raw start_date even
      when the export starts from a bookmark; the tap's "exporting from" line is exact.
    - "Pagination stopped after N pages because no records were found": the normal end of an
      export whose last page brought nothing new; the tap's summary line follows.
    """

    SUPERSEDED = ("Starting incremental sync of", "Pagination stopped after")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.SUPERSEDED):
            return False
        return not (message.startswith("An unhandled error occurred") and sys.exc_info()[1] is not None)


class ExportPaginator(BaseAPIPaginator[PageToken]):
    """Pages by ``start_time``, from the plan the stream made of each response.

    Zendesk's ``next_page`` URL is never followed: the next request is always built from the
    configured base URL, so credentials never leave the configured host. The token carries the
    probe's page size too, so that re-asking a full second is no "loop" to the SDK.
    """

    def __init__(self, start_time: int, plans: weakref.WeakKeyDictionary[requests.Response, PagePlan]) -> None:
        super().__init__((start_time, None))
        self._plans = plans

    def has_more(self, response: requests.Response) -> bool:
        return self._plans[response].next_start is not None

    def get_next(self, response: requests.Response) -> PageToken | None:
        plan = self._plans[response]
        return None if plan.next_start is None else (plan.next_start, plan.next_per_page)

    def continue_if_empty(self, response: requests.Response) -> bool:
        """A page whose events were all duplicates is not the end of the export."""
        return self.has_more(response)


class ZendeskExportStream(RESTStream[PageToken]):
    """Base for ``GET /api/v2/incremental/<records_key>`` time-based exports."""

    records_key: str
    replication_key = REPLICATION_KEY
    is_sorted = True
    allow_redirects = False  # a redirect could carry credentials to another host
    primary_keys = ("id",)
    # Records are decoded straight from JSON, so every value is already a JSON type and every
    # object in the schema is open: the SDK's recursive conforming could change nothing and
    # cost two thirds of the tap's CPU. Field selection (deselected properties) still applies.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, *args: Any, **kwargs: Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self.logger.addFilter(_SupersededSDKLines())
        self._decoded: weakref.WeakKeyDictionary[requests.Response, ExportPage] = weakref.WeakKeyDictionary()
        self._plans: weakref.WeakKeyDictionary[requests.Response, PagePlan] = weakref.WeakKeyDictionary()
        self._boundary = Boundary(0)
        self._first_start_time = 0
        self._probe_per_page: int | None = None
        self._testing_connection = False

    # --- settings, session, auth ---------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._zendesk_tap.settings

    @cached_property
    def progress(self) -> Progress:
        return Progress(self.name, self.logger, interval=self.settings.progress_interval)

    @cached_property
    def page_size(self) -> AdaptivePageSize:
        return AdaptivePageSize(self.settings.page_size)

    @property
    def url_base(self) -> str:
        return self.settings.base_url

    @property
    def timeout(self) -> int:
        return self.settings.request_timeout

    @property
    def throttle(self) -> Throttle:
        """One budget for every stream of the tap: Zendesk counts them together."""
        return self._zendesk_tap.throttle

    @property
    def _zendesk_tap(self) -> TapZendeskTicketEvents:
        return cast("TapZendeskTicketEvents", self._tap)

    @property
    def requests_session(self) -> requests.Session:
        if not isinstance(self._requests_session, ThrottledSession):
            self._requests_session = ThrottledSession(self.throttle)
        return self._requests_session

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        return build_authenticator(self.settings, throttle=self.throttle)

    # --- requests ------------------------------------------------------------------

    def bookmark(self, context: Context | None) -> int | None:
        """The saved bookmark (epoch seconds), None before the first run; refuse garbage.

        The tap normalised the state when it loaded it (see ``epoch_of_bookmark``); what is
        left here is either an integer or something no reading makes sense of.
        """
        value = self.get_context_state(context).get("replication_key_value")
        bookmark = epoch_of_bookmark(value)
        if bookmark is None and value not in (None, ""):
            msg = (
                f"The state's bookmark for '{self.name}' is neither epoch seconds nor a date-time: "
                f"{str(value)[:40]!r}; fix or clear the state."
            )
            raise TapError(msg)
        return bookmark

    def compare_start_date(self, value: str, start_date_value: str) -> str:  # noqa: ARG002
        """Keep the SDK's default from parsing an epoch bookmark as a date.

        The SDK stores the result as a "starting value" that ``get_records`` discards: the
        export starts from ``bookmark`` and start_date there.
        """
        return str(value)

    def get_new_paginator(self) -> ExportPaginator:
        return ExportPaginator(self._first_start_time, self._plans)

    def get_url_params(self, context: Context | None, next_page_token: PageToken | None) -> dict[str, Any]:  # noqa: ARG002
        start = self._first_start_time if next_page_token is None else next_page_token[0]
        params: dict[str, Any] = {"start_time": start, "per_page": self._per_page()}
        if self.sideload_reason() is not None and not self._testing_connection:
            params["include"] = "comment_events"
        scope = self.support_type_scope()
        if scope is not None:
            params["support_type_scope"] = scope
        return params

    def support_type_scope(self) -> Scope | None:
        """The ``support_type_scope`` this export is asked with; None for an export that takes none.

        Only the ticket events export takes it (see scope.py); ticket metric events do not.
        """
        return None

    def sideload_reason(self) -> str | None:
        """Why ``include=comment_events`` is sent, or None when it is not.

        Only the ticket events export takes it.
        """
        return None

    def _per_page(self) -> int:
        """The probe's size while a full second is re-asked, else the adaptive page size."""
        if self._testing_connection:
            return 1
        return self._probe_per_page or self.page_size.current

    def test_connection(self) -> int:
        """``--test``: one request for one event at start_date, without sideload; the events it brought.

        It goes through the stream's own request path (throttle, auth, retries, one-line
        errors), so a pass means a real run would be answered too; nothing is written.
        """
        self._testing_connection = True
        self._first_start_time = self.settings.start_time
        prepared = self.prepare_request(context=None, next_page_token=None)
        # The SDK's request_records wraps its private _request the same way: there is no
        # public "send one request" seam (covered by tests/test_sdk_hooks.py).
        response = self.request_decorator(self._request)(prepared, None)
        return len(self._decoded.pop(response).items)

    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """Retry what a retry can fix, waiting as Zendesk asks; turn the rest into one line."""
        retrying = with_retries(
            self._at_current_page_size(func),
            (RetriableAPIError,),
            on_backoff=self.backoff_handler,
            cured_at_once=self._cured_by_a_smaller_page,
        )

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            try:
                response = retrying(prepared_request, context)
            except FatalAPIError as exc:
                raise TapError(str(exc)) from None
            except RetriableAPIError as exc:
                raise TapError(f"Giving up on the export request after repeated failures: {exc}") from None
            except (ConnectionResetError, requests.exceptions.RequestException) as exc:
                msg = (
                    f"Giving up on the export request after {MAX_ERROR_TRIES} tries: "
                    f"{type(exc).__name__} talking to {self.url_base}"
                )
                raise TapError(msg) from None
            if self.page_size.succeeded():
                self.logger.info("Pages come back fine again: page size raised to %d.", self.page_size.current)
            return response

        return send

    def _at_current_page_size(self, func: RequestFunc) -> RequestFunc:
        """Send each try with the page size of the moment, which a timeout may have halved."""

        def attempt(prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            prepared_request.url = _with_param(prepared_request.url or "", "per_page", self._per_page())
            self.progress.requests += 1
            try:
                return func(prepared_request, context)
            except RetriableAPIError as exc:
                if exc.response is not None and exc.response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                    self.progress.rate_limited += 1
                raise

        return attempt

    def _cured_by_a_smaller_page(self, exc: BaseException) -> bool:
        """After a timeout, halve the page and retry it at once: not a failure yet."""
        if not (_timed_out(exc) and self.page_size.shrink()):
            return False
        self._probe_per_page = None  # a smaller page settles a full second as well as a probe
        self.logger.warning(
            "Export page timed out (%s); retrying it with page size %d.",
            "504" if getattr(exc, "response", None) is not None else "no answer within request_timeout",
            self.page_size.current,
        )
        return True

    def backoff_handler(self, details: Details) -> None:
        """Say what failed and how long the tap waits, without URLs' queries or headers."""
        self.progress.retries += 1
        exc = details.get("exception")
        if exc is not None and details["wait"] == 0 and _timed_out(exc):
            return  # a smaller page, already announced by _cured_by_a_smaller_page
        response = getattr(exc, "response", None)
        if response is not None:
            cause = f"{response.status_code} {zendesk_error_text(response)}".strip()
            if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                source = "Retry-After" if response.headers.get("Retry-After") else "no Retry-After, default"
                self.logger.info("Rate limited by Zendesk (%s); waiting %.1f s (%s).", cause, details["wait"], source)
                return
        else:
            cause = type(exc).__name__ if exc is not None else "unknown failure"
        self.logger.warning(
            "Export request failed (%s); retrying in %.1f s (try %d).",
            cause,
            details["wait"],
            details["tries"],
        )

    def validate_response(self, response: requests.Response) -> None:
        """Sort answers into retry, fail, "nothing new yet", or a decoded page."""
        status = response.status_code
        if status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY} and _too_recent(response):
            self.logger.info("Zendesk says start_time is too recent: nothing new to export yet.")
            self._decoded[response] = ExportPage.empty_end()
            return
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"{status} {zendesk_error_text(response)}", response)
        if status >= HTTPStatus.MULTIPLE_CHOICES:  # redirects are not followed: see allow_redirects
            raise FatalAPIError(describe_http_failure(response, self.settings.auth_settings))
        try:
            self._decoded[response] = ExportPage.decode(_decoder.decode(response.content), self.records_key)
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            # A truncated or non-JSON body is a transient fault of some proxy: retry it.
            raise RetriableAPIError(f"{status} with an unusable body ({exc})", response) from None

    def response_error_message(self, response: requests.Response) -> str:
        """No URL, headers or body dump: they could hold what should stay private."""
        return f"{response.status_code} {zendesk_error_text(response)}"

    # --- records and state ---------------------------------------------------------

    def get_batch_config(self, config: Mapping[str, Any]) -> None:  # noqa: ARG002
        """Never batch, even if a ``batch_config`` is passed: see the tap's capabilities."""
        return

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        """Yield a page's new records; once the SDK has written them all, close the page."""
        start_time, per_page = self._sent_params(response)
        plan = plan_page(
            self._decoded.pop(response),
            start_time=start_time,
            per_page=per_page,
            end_before=self.settings.end_time,
            boundary=self._boundary,
        )
        self._plans[response] = plan
        self._boundary = plan.boundary
        self._probe_per_page = plan.next_per_page
        if plan.next_per_page is not None:
            self.logger.info(
                "%s: a full page of %d events ended where it started (%s); asking that second once more "
                "with page size %d to tell a whole second from a cut one.",
                self.name,
                per_page,
                iso(start_time),
                plan.next_per_page,
            )
        yield from plan.records
        # Resumed only after the SDK wrote and counted the page's last record.
        if plan.records:
            reached = plan.records[-1][REPLICATION_KEY]
            if not self.selected:
                # The SDK advances the bookmark of selected streams only; a stream that runs for
                # its derived streams alone (ticket_field_history, ...) keeps its bookmark too.
                self._increment_stream_state(plan.records[-1])
            # A STATE per page: a killed backfill loses at most a page. Written through the tap's
            # state writer: the SDK's own per-stream writer skips a stream that wrote no RECORD.
            self._tap.state_writer.write_state(self.tap_state)
        else:
            reached = plan.next_start if plan.next_start is not None else start_time
        self.progress.page(len(plan.records), plan.duplicates, reached, finished=plan.next_start is None)
        if plan.stall_error:
            raise TapError(plan.stall_error)

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Export the window from the bookmark (or start_date), saying where it stands."""
        bookmark = self.bookmark(context)
        start_date = self.settings.start_time
        self._first_start_time = start_date if bookmark is None else max(bookmark, start_date)
        # The SDK parks start_date in the state as a "starting value"; it is no resume
        # point (the bookmark is epoch seconds), so keep it out of every STATE message.
        self.get_context_state(context).pop("starting_replication_value", None)
        self._check_scope(context, bookmark)
        if self._first_start_time > time.time() - RECENT_SECONDS:
            self.logger.info(
                "%s: nothing to export yet: start_time %s (%s) is within the last minute Zendesk never serves.",
                self.name,
                self._first_start_time,
                iso(self._first_start_time),
            )
            return
        if self.settings.end_time is not None and self._first_start_time >= self.settings.end_time:
            self.logger.info("%s: nothing to export: the bookmark is already at end_date.", self.name)
            return
        if bookmark is None:
            reason = "start_date; no bookmark yet"
        elif bookmark >= start_date:
            reason = "the bookmark"
        else:
            reason = "start_date, which is later than the bookmark"
        self.progress.start(
            self._first_start_time,
            reason,
            self.settings.end_time,
            AUTH_LABELS.get(self.settings.auth_method, self.settings.auth_method),
            self.throttle.max_per_minute,
            host=self.url_base,  # scheme, host and port only: settings.py refuses credentials or a query
            comments=self.sideload_reason(),
            tickets=self.support_type_scope(),
        )
        self._boundary = Boundary(self._first_start_time)
        try:
            yield from self.request_records(context)
        finally:
            self.progress.summary(self.bookmark(context), failed=sys.exc_info()[1], rows=self.derived_rows())

    def derived_rows(self) -> dict[str, int]:
        """Rows written so far by the streams derived from this one's pages, by stream."""
        return {}

    def _check_scope(self, context: Context | None, bookmark: int | None) -> None:
        """Say once when the scope differs from the bookmark's, then record this run's scope in STATE."""
        current = self.support_type_scope()
        if current is None:
            return
        state = self.get_context_state(context)
        before = scope_rules.bookmark_scope(state)
        warning = scope_rules.change_warning(before, current, iso(bookmark) if bookmark is not None else "")
        if warning:
            self.logger.warning("%s: %s", self.name, warning)
        state[scope_rules.STATE_KEY] = current

    @staticmethod
    def _sent_params(response: requests.Response) -> tuple[int, int]:
        """The start_time and per_page this response answers, read from its own request."""
        params = parse_qs(urlsplit(response.request.url or "").query)
        return int(params["start_time"][0]), int(params["per_page"][0])


def epoch_of_bookmark(value: object) -> int | None:
    """Epoch seconds of a bookmark in any reasonable form; None when it is none of them.

    An epoch number (the SDK reads JSON numbers with a fraction as Decimal), a string of one,
    or an ISO date-time: carried over from another tap, or set by hand with ``meltano state
    set``. The tap writes only integers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        return math.floor(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return math.floor(Decimal(text))
    return epoch_of_iso(text)


def _timed_out(exc: BaseException) -> bool:
    """A gateway timeout or our own read timeout: what a smaller page can cure."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    response = getattr(exc, "response", None)
    return response is not None and response.status_code == HTTPStatus.GATEWAY_TIMEOUT


def _with_param(url: str, name: str, value: object) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, str(value)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _too_recent(response: requests.Response) -> bool:
    text = response.text.lower()
    return "too recent" in text or "toorecent" in text
