"""The HTTP base stream for Zendesk's time-based incremental exports: one loop per export.

``ZendeskExportStream.get_records`` is the whole export, top to bottom::

    the streams the walk serves (this one when selected, and those made from its pages), each
    from its own bookmark (start.py); the walk starts at the earliest
    for each page, until the walk (walk.py) has no next request (and once more from where the
    comments' sideload starts, when it starts later):
        fetch_page: the request the walk asks for goes out through the SDK's session (the
                    tap's throttle mounted on it), the tap's authenticator and the one retry
                    policy (retry.py); the answer is decoded once
        walk.advance: the page rules (pages.py) plan the page; the walk moves on
        each record goes to the streams whose start it has reached: the derived streams
                    write their rows, this stream's are yielded (the SDK writes them)
        after_page: room for more work on the page's records, before its checkpoint
        the bookmarks the walk has reached move (state.py), one STATE follows

Everything about one page is a local variable of that loop. The SDK keeps the catalog,
selection, stream maps, RECORD and STATE writing, its metrics and the command line.
"""

from __future__ import annotations

import logging
import sys
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import requests
from singer_sdk import RESTStream, metrics
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_zendesk_ticket_events.dates import iso
from tap_zendesk_ticket_events.decoding import decode_body, repaired_text_warning
from tap_zendesk_ticket_events.errors import (
    TapError,
    describe_connection_failure,
    describe_http_failure,
    zendesk_error_text,
)
from tap_zendesk_ticket_events.page_size import AdaptivePageSize
from tap_zendesk_ticket_events.pages import REPLICATION_KEY, ExportPage, record_second
from tap_zendesk_ticket_events.progress import Progress
from tap_zendesk_ticket_events.retry import with_retries
from tap_zendesk_ticket_events.start import Reader, own_words, sideload_phases, starting_point
from tap_zendesk_ticket_events.state import ExportState
from tap_zendesk_ticket_events.throttle import mount
from tap_zendesk_ticket_events.walk import ExportWalk, PageRequest

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from backoff.types import Details
    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator
    from singer_sdk.tap_base import Tap

    from tap_zendesk_ticket_events.pages import PagePlan
    from tap_zendesk_ticket_events.scope import Scope
    from tap_zendesk_ticket_events.settings import Settings
    from tap_zendesk_ticket_events.state import StateSink
    from tap_zendesk_ticket_events.throttle import AccountPacer, Throttle

AUTH_LABELS = {
    "api_token": "API token (email + api_token)",
    "access_token": "OAuth access token",
    "oauth_refresh": "OAuth with a rotating refresh token",
    "oauth_client_credentials": "OAuth client credentials",
}


class ExportServices(Protocol):
    """What the tap lends every export stream, one of each per tap.

    Zendesk counts the requests of all streams in one budget, and one OAuth token serves them
    all. A protocol, so that this module needs no import of the tap's.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def throttle(self) -> Throttle: ...

    @property
    def pacer(self) -> AccountPacer: ...

    @property
    def authenticator(self) -> APIAuthenticatorBase: ...

    @property
    def state_writer(self) -> StateSink: ...


class _SupersededSDKLines(logging.Filter):
    """Drop the SDK's lines that the tap's own say better, or would say twice.

    The SDK writes these through the stream's logger and has no setting or hook to leave them
    out, so they are matched by their text (tests/test_sdk_hooks.py fails when a text changes):

    - "An unhandled error occurred": the SDK logs it from inside its ``except`` block; the tap's
      ``invoke`` reports every error once, as its own single line.
    - "Starting incremental sync ... with bookmark value": it shows the raw start_date even
      when the export starts from a bookmark; the tap's "exporting from" line is exact.
    """

    SUPERSEDED = "Starting incremental sync of"

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.SUPERSEDED):
            return False
        return not (message.startswith("An unhandled error occurred") and sys.exc_info()[1] is not None)


class ZendeskExportStream(RESTStream[Any]):
    """Base for ``GET /api/v2/incremental/<records_key>`` time-based exports."""

    records_key: str
    replication_key = REPLICATION_KEY
    is_sorted = True
    primary_keys = ("id",)
    # Records are decoded straight from JSON, so every value is already a JSON type and every
    # object in the schema is open: the SDK's recursive conforming could change nothing and
    # cost two thirds of the tap's CPU. Field selection (deselected properties) still applies.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    _repaired_text_logged = False
    """True once the run said that a page's text was repaired (see decoding.py): one line per run."""

    def __init__(self, tap: Tap, services: ExportServices) -> None:
        super().__init__(tap)
        self.services = services
        self.logger.addFilter(_SupersededSDKLines())

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @cached_property
    def progress(self) -> Progress:
        return Progress(self.name, self.logger, interval=self.settings.progress_interval, budget=self.services.throttle)

    @property
    @override
    def url_base(self) -> str:
        return self.settings.base_url

    @property
    @override
    def requests_session(self) -> requests.Session:
        """The SDK's session, with the export budget on its export URLs, the account-wide one elsewhere.

        Every export request the session sends passes the export budget, the OAuth re-send
        after a 401 included; every other request (a ticket's comments) the account-wide limit.
        """
        session = super().requests_session
        mount(session, self.url_base, self.services.throttle, self.services.pacer)
        return session

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

    def derived_rows(self) -> dict[str, int]:
        """Rows written so far by the streams derived from this one's pages, by stream."""
        return {}

    # --- the export ----------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """One walk of the export for every stream it serves, a checkpoint after every page.

        Each stream (this one when selected, and the streams made from its pages) has a bookmark
        of its own and takes the records from its own starting point; the walk starts at the
        earliest of them, so a stream selected later gets its whole history while the others
        write nothing twice (but the boundary second a resume always reads again).
        """
        own = self._state_of(self.name, lambda: self.get_context_state(context))
        readers = self._readers(own)
        if not readers:
            return
        start = min(reader.start for reader in readers)
        sideload_from = self.sideload_from({reader.name: reader.start for reader in readers})
        self._say_start(readers, start, sideload_from)
        self.begin_walk(start)
        ours = next((reader for reader in readers if reader.take is None), None)
        takers = [(reader.start, reader.take) for reader in readers if reader.take is not None]
        # Only when a stream starts later than the walk is a record's own second needed.
        staggered = any(reader.start > start for reader in readers)
        page_size = AdaptivePageSize(self.settings.page_size)
        written = 0
        try:
            with self.get_http_request_counter() as request_counter:
                request_counter.with_context(context)
                for begin, end_before, sideload in sideload_phases(start, sideload_from, self.settings.end_time):
                    walk = ExportWalk(begin, page_size, end_before=end_before, sideload=sideload)
                    while (request := walk.next_request()) is not None:
                        answered, page = self.fetch_page(request, walk, context)
                        request_counter.increment()
                        step = walk.advance(answered, page)
                        plan = step.plan
                        self._say_page(answered, step.raised_to, plan)
                        for record in plan.records:
                            second = record_second(record) if staggered else start
                            for taker_start, take in takers:
                                if second >= taker_start:
                                    take(record)
                            if ours is not None and second >= ours.start:
                                yield record
                                written += 1  # resumed once the SDK has written and counted the record
                        self.after_page(plan)
                        if plan.records:
                            self._checkpoint(readers, plan.records[-1][REPLICATION_KEY])
                        if plan.stall_error:
                            raise TapError(plan.stall_error)
        finally:
            self.progress.summary(
                readers[0].state.bookmark(),
                failed=sys.exc_info()[1],
                rows=self.derived_rows(),
                written=written if ours is not None else None,
            )

    def begin_walk(self, start: int) -> None:
        """Work to set up once the walk's start is known, before its first request (none here)."""

    def after_page(self, plan: PagePlan) -> None:
        """Work on a page once its records are written and before its checkpoint (none here)."""

    def derived_takers(self) -> list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]]]:
        """The selected streams made from this export's records: (name, its state entry, what takes a record).

        None here; ticket events have two.
        """
        return []

    def sideload_from(self, starts: Mapping[str, int]) -> int | None:  # noqa: ARG002 - ticket events use it
        """The second from which the comments are sideloaded, by the streams' starts; None: never."""
        return None

    def _state_of(self, name: str, entry: Callable[[], dict[str, Any]]) -> ExportState:
        return ExportState(name, entry, lambda: self.tap_state, self.services.state_writer, self.logger)

    def _readers(self, own: ExportState) -> list[Reader]:
        """The streams this walk serves, each from its own start; those with nothing to ask are said and left out.

        This stream's own entry is left as it is when it is not selected (its bookmark stays).
        """
        candidates: list[tuple[str, ExportState, Callable[[dict[str, Any]], None] | None]] = []
        if self.selected:
            candidates.append((self.name, own, None))
        else:
            own.tidy()
        for name, entry, writes in self.derived_takers():
            candidates.append((name, self._state_of(name, entry), writes))
        readers = []
        for name, state, take in candidates:
            starting = starting_point(name, state.begin(self.support_type_scope()), self.settings.start_time)
            if starting.too_recent:
                self.logger.info(
                    "%s: nothing to export yet: start_time %s (%s) is within the last minute Zendesk never serves.",
                    name,
                    starting.start_time,
                    iso(starting.start_time),
                )
            elif self.settings.end_time is not None and starting.start_time >= self.settings.end_time:
                self.logger.info("%s: nothing to export: the bookmark is already at end_date.", name)
            else:
                readers.append(Reader(name, state, starting.start_time, starting.reason, take))
        return readers

    def _say_start(self, readers: list[Reader], start: int, sideload_from: int | None) -> None:
        """The start line: the walk's window, and each stream's own starting point when it serves several."""
        earliest = next(reader for reader in readers if reader.start == start)
        reason = earliest.reason if len(readers) == 1 else f"the earliest start, {earliest.name}'s: {earliest.reason}"
        comments = self.sideload_reason()
        if comments is not None and sideload_from is not None and sideload_from > start:
            comments += f"; from {iso(sideload_from)} on"
        self.progress.start(
            start,
            reason,
            self.settings.end_time,
            AUTH_LABELS.get(self.settings.auth_method, self.settings.auth_method),
            host=self.url_base,  # scheme, host and port only: settings.py refuses credentials or a query
            comments=comments,
            tickets=self.support_type_scope(),
        )
        if len(readers) > 1:
            for reader in readers:
                self.logger.info(
                    "%s: from %s (%s, %d).", reader.name, own_words(reader.reason), iso(reader.start), reader.start
                )

    def _checkpoint(self, readers: list[Reader], reached: int) -> None:
        """A page's records are all written: each stream that has begun moves its bookmark; one STATE.

        A stream whose start is still ahead keeps its bookmark: it never goes back.
        """
        moved = [reader for reader in readers if reached >= reader.start]
        for reader in moved:
            reader.state.move(reached)
        if moved:
            moved[0].state.write()

    def _say_page(self, answered: PageRequest, raised_to: int | None, plan: PagePlan) -> None:
        """The page's lines: a page size raised, a second re-asked, the progress line."""
        if raised_to is not None:
            self.logger.info("Pages come back fine again: page size raised to %d.", raised_to)
        if plan.next_per_page is not None:
            self.logger.info(
                "%s: a full page of %d events ended where it started (%s); asking that second once more "
                "with page size %d to tell a whole second from a cut one.",
                self.name,
                answered.per_page,
                iso(answered.start_time),
                plan.next_per_page,
            )
        if plan.records:
            reached: int = plan.records[-1][REPLICATION_KEY]
        else:
            reached = plan.next_start if plan.next_start is not None else answered.start_time
        self.progress.page(len(plan.records), plan.duplicates, reached, finished=plan.next_start is None)

    def test_connection(self) -> int:
        """``--test``: one request for one event at start_date, without sideload; the events it brought.

        It goes through the export's own fetch (throttle, auth, retries, one-line errors), so a
        pass means a real run would be answered too; nothing is written.
        """
        _, page = self.fetch_page(PageRequest(self.settings.start_time, per_page=1, sideload=False), None, None)
        return len(page.items)

    # --- one page: the request out, the answer in ------------------------------------------

    def fetch_page(
        self, request: PageRequest, walk: ExportWalk | None, context: Context | None
    ) -> tuple[PageRequest, ExportPage]:
        """``request``, tried until answered: the request that was answered, and its page.

        A timeout makes the walk halve the page (``shrink_page``): the retry is that smaller
        request. Without a walk (``--test``'s one event) a timeout is a failure like any other.
        """
        current = request

        def cured_by_a_smaller_page(exc: BaseException) -> bool:
            nonlocal current
            smaller = walk.shrink_page() if walk is not None and _timed_out(exc) else None
            if smaller is None:
                return False
            current = smaller
            self.logger.warning(
                "Export page timed out (%s); retrying it with page size %d.",
                "504" if getattr(exc, "response", None) is not None else "no answer within request_timeout",
                smaller.per_page,
            )
            return True

        def attempt() -> tuple[PageRequest, ExportPage]:
            return current, self._read(self._send(current, context))

        trying = with_retries(
            attempt,
            (RetriableAPIError,),
            on_backoff=self._say_retry,
            cured_at_once=cured_by_a_smaller_page,
            wait_limit=self.settings.retry_wait_limit,
        )
        sent_before = self.progress.requests
        try:
            return trying()
        except RetriableAPIError as exc:
            raise TapError(f"Giving up on the export request after repeated failures: {exc}") from None
        except (ConnectionResetError, requests.exceptions.RequestException) as exc:
            msg = describe_connection_failure(
                exc,
                base_url=self.url_base,
                setting=self.settings.address_setting,
                tries=self.progress.requests - sent_before,
            )
            raise TapError(msg) from None

    def _send(self, request: PageRequest, context: Context | None) -> requests.Response:
        """One try, prepared and authenticated afresh (the token of the moment).

        Timed in the SDK's ``http_request_duration`` metric. Redirects are not followed: one
        could carry credentials to another host.
        """
        params = request.params()
        scope = self.support_type_scope()
        if scope is not None:
            params["support_type_scope"] = scope
        session = self.requests_session
        prepared = session.prepare_request(
            requests.Request(
                "GET",
                self.url_base + self.path,  # the path has no {placeholders}: an export has no partitions
                params=params,
                headers={"User-Agent": self.user_agent},
                auth=self.services.authenticator,
            )
        )
        self.progress.requests += 1
        response = session.send(prepared, timeout=self.settings.request_timeout, allow_redirects=False)
        self._measure(response, context)
        return response

    def _measure(self, response: requests.Response, context: Context | None) -> None:
        """The SDK's ``http_request_duration`` metric, with the tags the SDK's own loop gives it."""
        tags: dict[str, Any] = {
            metrics.Tag.STREAM: self.name,
            metrics.Tag.ENDPOINT: self.path,
            metrics.Tag.HTTP_STATUS_CODE: response.status_code,
            metrics.Tag.STATUS: (
                metrics.Status.SUCCEEDED if response.status_code < HTTPStatus.BAD_REQUEST else metrics.Status.FAILED
            ),
        }
        if context:
            tags[metrics.Tag.CONTEXT] = context
        point = metrics.Point(
            "timer", metric=metrics.Metric.HTTP_REQUEST_DURATION, value=response.elapsed.total_seconds(), tags=tags
        )
        metrics.log(metrics.get_metrics_logger(), point)

    def _read(self, response: requests.Response) -> ExportPage:
        """Sort an answer into retry, fail, "nothing new yet", or the decoded page."""
        status = response.status_code
        if status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY} and _too_recent(response):
            self.logger.info("Zendesk says start_time is too recent: nothing new to export yet.")
            return ExportPage.empty_end()
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            self.progress.rate_limited += 1
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"{status} {zendesk_error_text(response)}", response)
        if status >= HTTPStatus.MULTIPLE_CHOICES:  # redirects are not followed: see _send
            raise TapError(describe_http_failure(response, self.settings.auth_settings, self.settings.auth_method))
        try:
            decoded = decode_body(response.content, self.records_key)
            page = ExportPage.decode(decoded.body, self.records_key)
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            # A truncated or non-JSON body is a transient fault of some proxy: retry it.
            raise RetriableAPIError(f"{status} with an unusable body ({exc})", response) from None
        if decoded.repaired and not self._repaired_text_logged:
            self._repaired_text_logged = True
            self.logger.warning("%s: %s", self.name, repaired_text_warning(decoded))
        return page

    def _say_retry(self, details: Details) -> None:
        """Say what failed and how long the tap waits, without URLs' queries or headers."""
        self.progress.retries += 1
        exc = details.get("exception")
        if exc is not None and details["wait"] == 0 and _timed_out(exc):
            return  # a smaller page, already announced by cured_by_a_smaller_page
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

    # --- what the SDK asks of every stream ------------------------------------------------

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Keep the SDK's default from parsing an epoch bookmark as a date.

        The SDK stores the result as a "starting value" that ``ExportState.begin`` discards:
        the export starts from the bookmark and start_date there.
        """
        return str(value)

    @override
    def get_batch_config(self, config: Mapping[str, Any]) -> None:
        """Never batch, even if a ``batch_config`` is passed: see the tap's capabilities."""
        return

    @override
    def get_new_paginator(self) -> BaseAPIPaginator[Any] | None:
        """None: the export's walk pages it, in ``get_records`` (abstract in the SDK)."""
        return None

    @override
    def parse_response(self, response: requests.Response) -> Iterator[dict[str, Any]]:
        """Not used: ``get_records`` decodes and plans each page itself (abstract in the SDK)."""
        msg = f"{self.name}: pages are read by get_records, not by the SDK's request_records"
        raise NotImplementedError(msg)


def _timed_out(exc: BaseException) -> bool:
    """A gateway timeout or our own read timeout: what a smaller page can cure."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    response = getattr(exc, "response", None)
    return response is not None and response.status_code == HTTPStatus.GATEWAY_TIMEOUT


def _too_recent(response: requests.Response) -> bool:
    text = response.text.lower()
    return "too recent" in text or "toorecent" in text
