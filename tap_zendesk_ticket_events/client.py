"""The HTTP base stream for Zendesk's time-based incremental exports.

Everything a time-based export endpoint shares lives here: the request budget, retries that
honour ``Retry-After``, one-line errors, the page rules of ``pages.py`` walked by
``walk.ExportWalk``, and a STATE message after every page, so that a multi-day backfill
killed at any point resumes where it was.

HTTP policy is composed around the SDK's own seams: the wait policy of ``retry.wait_times``
is the ``backoff_wait_generator``, the SDK's ``request_decorator`` is wrapped (page size of
the moment, one-line errors), and the request budget is a transport adapter mounted on the
SDK's session, so every request the session sends, the OAuth re-send after a 401 included,
passes it by one path.
"""

from __future__ import annotations

import logging
import sys
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from tap_zendesk_ticket_events import scope as scope_rules
from tap_zendesk_ticket_events.auth import build_authenticator
from tap_zendesk_ticket_events.decoding import decode_body, repaired_text_warning
from tap_zendesk_ticket_events.errors import (
    TapError,
    describe_connection_failure,
    describe_http_failure,
    zendesk_error_text,
)
from tap_zendesk_ticket_events.page_size import AdaptivePageSize
from tap_zendesk_ticket_events.pages import REPLICATION_KEY, ExportPage, iso
from tap_zendesk_ticket_events.progress import Progress
from tap_zendesk_ticket_events.retry import MAX_TRIES, wait_times
from tap_zendesk_ticket_events.start import epoch_of_bookmark, starting_point
from tap_zendesk_ticket_events.throttle import ThrottledAdapter
from tap_zendesk_ticket_events.walk import ExportWalk, PageToken

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Mapping

    from backoff.types import Details
    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.tap_base import Tap

    from tap_zendesk_ticket_events.pages import PagePlan
    from tap_zendesk_ticket_events.scope import Scope
    from tap_zendesk_ticket_events.settings import Settings
    from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
    from tap_zendesk_ticket_events.throttle import Throttle

AUTH_LABELS = {
    "api_token": "API token (email + api_token)",
    "access_token": "OAuth access token",
    "oauth_refresh": "OAuth with a rotating refresh token",
}


class _SupersededSDKLines(logging.Filter):
    """Drop the SDK's lines that the tap's own say better, or would say twice.

    The SDK writes these through the stream's logger and has no setting or hook to leave them
    out, so they are matched by their text (tests/test_sdk_hooks.py fails when a text changes):

    - "An unhandled error occurred": the SDK logs it from inside its ``except`` block; the tap's
      ``invoke`` reports every error once, as its own single line.
    - "Starting incremental sync ... with bookmark value": it shows the raw start_date even
      when the export starts from a bookmark; the tap's "exporting from" line is exact.
    - "Pagination stopped after N pages because no records were found": the normal end of an
      export whose last page brought nothing new; the tap's summary line follows.
    - "Backing off ..." and "Giving up ...": backoff's own lines, through the logger the SDK's
      ``request_decorator`` hands it; ``backoff_handler`` says each wait better, and a give-up
      is the run's one error line.
    """

    SUPERSEDED = ("Starting incremental sync of", "Pagination stopped after", "Backing off ", "Giving up ")

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.SUPERSEDED):
            return False
        return not (message.startswith("An unhandled error occurred") and sys.exc_info()[1] is not None)


class ExportPaginator(BaseAPIPaginator[PageToken]):
    """Pages by ``start_time``: asks the export's walk where it goes next.

    Zendesk's ``next_page`` URL is never followed: the next request is always built from the
    configured base URL, so credentials never leave the configured host.
    """

    def __init__(self, walk: ExportWalk) -> None:
        super().__init__(walk.first_token())
        self._walk = walk

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._walk.token() is not None

    @override
    def get_next(self, response: requests.Response) -> PageToken | None:
        return self._walk.token()

    @override
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
    _repaired_text_logged = False
    """True once the run said that a page's text was repaired (see decoding.py): one line per run."""

    def __init__(self, tap: Tap, *args: Any, **kwargs: Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self.logger.addFilter(_SupersededSDKLines())
        self._walk: ExportWalk | None = None

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
    @override
    def url_base(self) -> str:
        return self.settings.base_url

    @property
    @override
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
    @override
    def requests_session(self) -> requests.Session:
        """The SDK's session, with the request budget mounted on it for every URL."""
        session = super().requests_session
        if not isinstance(session.get_adapter(self.url_base), ThrottledAdapter):
            adapter = ThrottledAdapter(self.throttle)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session

    @cached_property
    @override
    def authenticator(self) -> APIAuthenticatorBase:
        return build_authenticator(self.settings)

    # --- the walk: what the SDK's hooks ask ----------------------------------------------

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Keep the SDK's default from parsing an epoch bookmark as a date.

        The SDK stores the result as a "starting value" that ``get_records`` discards: the
        export starts from the bookmark and start_date there (see ``ExportState.begin``).
        """
        return str(value)

    @property
    def walk(self) -> ExportWalk:
        """The walk of the export under way (made by ``get_records`` or ``test_connection``)."""
        if self._walk is None:
            msg = f"{self.name}: no export under way"
            raise RuntimeError(msg)
        return self._walk

    def new_walk(self, start_time: int, *, testing: bool = False) -> ExportWalk:
        self._walk = ExportWalk(
            start_time,
            self.page_size,
            end_before=self.settings.end_time,
            sideload=self.sideload_reason() is not None and not testing,
            fixed_per_page=1 if testing else None,
        )
        return self._walk

    @override
    def get_new_paginator(self) -> ExportPaginator:
        return ExportPaginator(self.walk)

    @override
    def get_url_params(self, context: Context | None, next_page_token: PageToken | None) -> dict[str, Any]:
        params = self.walk.params()
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

    # --- requests: the SDK's retry loop, with the tap's policy ----------------------------

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """The SDK's retrying decorator around each try, and one-line errors around it."""
        retrying = super().request_decorator(self._at_current_page_size(func))

        def send(prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            sent_before = self.progress.requests
            try:
                response = retrying(prepared_request, context)
            except FatalAPIError as exc:
                raise TapError(str(exc)) from None
            except RetriableAPIError as exc:
                raise TapError(f"Giving up on the export request after repeated failures: {exc}") from None
            except (ConnectionResetError, requests.exceptions.RequestException) as exc:
                tries = self.progress.requests - sent_before
                msg = describe_connection_failure(
                    exc, base_url=self.url_base, setting=self.settings.address_setting, tries=tries
                )
                raise TapError(msg) from None
            if self.page_size.succeeded():
                self.logger.info("Pages come back fine again: page size raised to %d.", self.page_size.current)
            return response

        return send

    def _at_current_page_size(self, func: RequestFunc) -> RequestFunc:
        """Send each try with the page size of the moment, which a timeout may have halved."""

        def attempt(prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
            prepared_request.url = _with_param(prepared_request.url or "", "per_page", self.walk.sending())
            self.progress.requests += 1
            try:
                return func(prepared_request, context)
            except RetriableAPIError as exc:
                if exc.response is not None and exc.response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
                    self.progress.rate_limited += 1
                raise

        return attempt

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """The tap's waits (``retry.wait_times``): Retry-After, its own budgets, smaller pages."""
        return wait_times(self._cured_by_a_smaller_page, self.settings.retry_wait_limit)

    @override
    def backoff_max_tries(self) -> int:
        """High enough never to cut in: ``wait_times`` decides when to stop, per kind of failure."""
        return MAX_TRIES

    @override
    def backoff_jitter(self, value: float) -> float:
        """None added: Retry-After is waited exactly, and ``wait_times`` jitters its own backoff."""
        return value

    def _cured_by_a_smaller_page(self, exc: BaseException) -> bool:
        """After a timeout, halve the page and retry it at once: not a failure yet."""
        if not (_timed_out(exc) and self.walk.timed_out()):
            return False
        self.logger.warning(
            "Export page timed out (%s); retrying it with page size %d.",
            "504" if getattr(exc, "response", None) is not None else "no answer within request_timeout",
            self.page_size.current,
        )
        return True

    @override
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

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Sort answers into retry, fail, "nothing new yet", or a decoded page for the walk."""
        status = response.status_code
        if status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY} and _too_recent(response):
            self.logger.info("Zendesk says start_time is too recent: nothing new to export yet.")
            self.walk.answered(ExportPage.empty_end())
            return
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"{status} {zendesk_error_text(response)}", response)
        if status >= HTTPStatus.MULTIPLE_CHOICES:  # redirects are not followed: see allow_redirects
            raise FatalAPIError(describe_http_failure(response, self.settings.auth_settings))
        try:
            decoded = decode_body(response.content, self.records_key)
            page = ExportPage.decode(decoded.body, self.records_key)
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            # A truncated or non-JSON body is a transient fault of some proxy: retry it.
            raise RetriableAPIError(f"{status} with an unusable body ({exc})", response) from None
        if decoded.repaired and not self._repaired_text_logged:
            self._repaired_text_logged = True
            self.logger.warning("%s: %s", self.name, repaired_text_warning(decoded))
        self.walk.answered(page)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """No URL, headers or body dump: they could hold what should stay private."""
        return f"{response.status_code} {zendesk_error_text(response)}"

    @override
    def get_batch_config(self, config: Mapping[str, Any]) -> None:
        """Never batch, even if a ``batch_config`` is passed: see the tap's capabilities."""
        return

    # --- records ---------------------------------------------------------------------

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        """The page's new records, from the walk's plan of the page just received."""
        plan = self.walk.take_page()
        sent = self.walk.sent
        assert sent is not None
        if plan.next_per_page is not None:
            self.logger.info(
                "%s: a full page of %d events ended where it started (%s); asking that second once more "
                "with page size %d to tell a whole second from a cut one.",
                self.name,
                sent.per_page,
                iso(sent.start_time),
                plan.next_per_page,
            )
        self.progress.page(
            len(plan.records), plan.duplicates, _reached(plan, sent.start_time), finished=plan.next_start is None
        )
        return plan.records

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Export the window from the bookmark (or start_date), a checkpoint after every page."""
        state = ExportState(self, context)
        bookmark = state.begin(self.support_type_scope())
        start = starting_point(self.name, bookmark, self.settings.start_time)
        if start.too_recent:
            self.logger.info(
                "%s: nothing to export yet: start_time %s (%s) is within the last minute Zendesk never serves.",
                self.name,
                start.start_time,
                iso(start.start_time),
            )
            return
        if self.settings.end_time is not None and start.start_time >= self.settings.end_time:
            self.logger.info("%s: nothing to export: the bookmark is already at end_date.", self.name)
            return
        self.progress.start(
            start.start_time,
            start.reason,
            self.settings.end_time,
            AUTH_LABELS.get(self.settings.auth_method, self.settings.auth_method),
            self.throttle.max_per_minute,
            host=self.url_base,  # scheme, host and port only: settings.py refuses credentials or a query
            comments=self.sideload_reason(),
            tickets=self.support_type_scope(),
        )
        walk = self.new_walk(start.start_time)
        written = 0
        try:
            for record in self.request_records(context):
                yield record
                # Resumed once the SDK has written and counted the record (its generator contract).
                written += 1
                if walk.is_page_end(record):
                    state.checkpoint(record)
        finally:
            self.progress.summary(
                state.bookmark(),
                failed=sys.exc_info()[1],
                rows=self.derived_rows(),
                written=written if self.selected else None,
            )

    def derived_rows(self) -> dict[str, int]:
        """Rows written so far by the streams derived from this one's pages, by stream."""
        return {}

    def test_connection(self) -> int:
        """``--test``: one request for one event at start_date, without sideload; the events it brought.

        It goes through the stream's own request path (throttle, auth, retries, one-line
        errors), so a pass means a real run would be answered too; nothing is written.
        """
        walk = self.new_walk(self.settings.start_time, testing=True)
        prepared = self.prepare_request(context=None, next_page_token=walk.token())
        # The SDK's request_records wraps its private _request the same way: there is no
        # public "send one request" seam (covered by tests/test_sdk_hooks.py).
        self.request_decorator(self._request)(prepared, None)
        return len(walk.take_received().items)


class ExportState:
    """The one place a stream's SDK state is read and written: bookmark, scope, checkpoints."""

    def __init__(self, stream: ZendeskExportStream, context: Context | None) -> None:
        self._stream = stream
        self._context = context

    def _entry(self) -> dict[str, Any]:
        return self._stream.get_context_state(self._context)

    def bookmark(self) -> int | None:
        """The saved bookmark (epoch seconds), None before the first run; refuse garbage.

        The tap normalised the state when it loaded it (see ``start.epoch_of_bookmark``); what is
        left here is either an integer or something no reading makes sense of.
        """
        value = self._entry().get("replication_key_value")
        bookmark = epoch_of_bookmark(value)
        if bookmark is None and value not in (None, ""):
            msg = (
                f"The state's bookmark for '{self._stream.name}' is neither epoch seconds nor a date-time: "
                f"{str(value)[:40]!r}; fix or clear the state."
            )
            raise TapError(msg)
        return bookmark

    def begin(self, scope: Scope | None) -> int | None:
        """The bookmark to start from, with the state made ready for this run's STATE messages.

        The SDK parks start_date in the state as a "starting value"; it is no resume point (the
        bookmark is epoch seconds), so it is kept out of every STATE message. With a scope, a run
        whose scope differs from its bookmark's says so once, and the scope is recorded.
        """
        bookmark = self.bookmark()
        entry = self._entry()
        entry.pop("starting_replication_value", None)
        if scope is not None:
            before = scope_rules.bookmark_scope(entry)
            warning = scope_rules.change_warning(before, scope, iso(bookmark) if bookmark is not None else "")
            if warning:
                self._stream.logger.warning("%s: %s", self._stream.name, warning)
            entry[scope_rules.STATE_KEY] = scope
        return bookmark

    def checkpoint(self, record: dict[str, Any]) -> None:
        """A page's records are all written: a STATE, so a killed backfill loses at most a page.

        The SDK advances the bookmark of selected streams only; a stream that runs for its
        derived streams alone (ticket_field_history, ...) keeps its bookmark too. Written
        through the tap's state writer: the SDK's per-stream writer skips a stream that wrote
        no RECORD.
        """
        stream = self._stream
        if not stream.selected:
            stream._increment_stream_state(record, context=self._context)
        stream._tap.state_writer.write_state(stream.tap_state)


def _reached(plan: PagePlan, start_time: int) -> int:
    """How far the export has come after a page: its last record's value, else its next start."""
    if plan.records:
        reached: int = plan.records[-1][REPLICATION_KEY]
        return reached
    return plan.next_start if plan.next_start is not None else start_time


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
