"""The streams of the tap.

One class per Zendesk incremental export endpoint, and three streams derived from the ticket
events pages: two with no request of their own, and ``ticket_redactions``, written by the
redaction step (follow.py) that ``ticket_events`` runs after each page.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from datetime import UTC, datetime
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.schema.source import SchemaDirectory, StreamSchema
from singer_sdk.singerlib import RecordMessage

from tap_zendesk_ticket_events import derived, redactions
from tap_zendesk_ticket_events.client import ZendeskExportStream
from tap_zendesk_ticket_events.follow import FollowRedactions, Writers
from tap_zendesk_ticket_events.pages import REPLICATION_KEY
from tap_zendesk_ticket_events.reread import Rereader, served_at

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import requests
    from singer_sdk.helpers.types import Context

    from tap_zendesk_ticket_events.pages import ExportPage, PagePlan
    from tap_zendesk_ticket_events.scope import Scope

SCHEMAS = SchemaDirectory(resources.files(__package__) / "schemas")


class TicketEventsStream(ZendeskExportStream):
    """Every change made to every ticket (``/api/v2/incremental/ticket_events``)."""

    name = "ticket_events"
    path = "/api/v2/incremental/ticket_events.json"
    records_key = "ticket_events"
    schema = StreamSchema(SCHEMAS)
    _via_object_logged = False
    _following: FollowRedactions | None = None

    @cached_property
    def derived_streams(self) -> list[DerivedStream]:
        """The selected streams made from this stream's events (the SDK's children of it)."""
        return [child for child in self.child_streams if isinstance(child, DerivedStream) and child.selected]

    @override
    def sideload_reason(self) -> str | None:
        """Full comments when asked for, and whenever ``ticket_comments`` needs them."""
        if self.settings.include_comment_events:
            return "include_comment_events is true"
        if any(isinstance(child, TicketCommentsStream) for child in self.derived_streams):
            return "ticket_comments is selected"
        return None

    @override
    def support_type_scope(self) -> Scope:
        return self.settings.support_type_scope

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Announce the derived streams (their SCHEMA first), then export as every stream does.

        Each derived stream counts its rows in the SDK's ``record_count`` METRIC while the
        export runs, as a stream of its own would.
        """
        with contextlib.ExitStack() as counting:
            for child in self.derived_streams:
                child.write_schema()
                counting.enter_context(child.counting())
            try:
                yield from super().get_records(context)
            finally:
                said = self._following.summary() if self._following is not None else None
                if said:
                    self.logger.info("%s: %s", self.name, said)
                self._following = None

    # --- redactions (follow.py) ------------------------------------------------------------

    @override
    def begin_walk(self, start: int) -> None:
        """The run's redaction step, made for the walk's window."""
        self._following = self._follow_redactions(start)

    def _follow_redactions(self, run_from: int) -> FollowRedactions:
        """The redaction step of a run from ``run_from``: which rows it can write, and whether it re-reads.

        Re-reads only when comment text is written at all (sideloaded, into ``ticket_events`` or
        ``ticket_comments``) and ``follow_redactions`` is on; an export re-read only when
        ``ticket_events`` is written (else the comments list makes the ``ticket_comments`` row).
        """
        comments = next((c for c in self.derived_streams if isinstance(c, TicketCommentsStream)), None)
        listed = next((c for c in self.derived_streams if isinstance(c, TicketRedactionsStream)), None)
        holds_text = self.sideload_reason() is not None and (self.selected or comments is not None)
        reader = None
        if self.settings.follow_redactions and holds_text:
            reader = Rereader(
                self.requests_session,
                self.services.authenticator,
                self.settings,
                headers={"User-Agent": self.user_agent, **self.http_headers},
                logger=self.logger,
            )
        writers = Writers(
            event=self._write_again if self.selected else None,
            comments=comments.emit if comments is not None else None,
            redactions=listed.emit if listed is not None else None,
        )
        params = {"include": "comment_events", "support_type_scope": self.support_type_scope()}
        return FollowRedactions(reader, writers, run_from=run_from, export_params=params, logger=self.logger)

    @override
    def _read(self, response: requests.Response) -> ExportPage:
        """An export page; the first one's ``Date`` tells the redaction step when the run began reading."""
        page = super()._read(response)
        if self._following is not None:
            self._following.served(served_at(response))
        return page

    @override
    def after_page(self, plan: PagePlan) -> None:
        """Follow the page's redactions before its checkpoint, the bookmark held at the first of them.

        The SDK has already moved its bookmark (what a SIGTERM writes) past the page's records;
        while the re-reads run it is held at the first redaction's second, so that a run stopped
        among them resumes before that redaction and does them again. It moves on only once
        every row was written again.
        """
        if self._following is None:
            return
        found = redactions.find(plan.records)
        if not found:
            return
        audits = {r.event_id for r in found}
        first = min(record[REPLICATION_KEY] for record in plan.records if record.get("id") in audits)
        entry = self.get_context_state(None)
        bookmark = entry.get("replication_key_value")
        if isinstance(bookmark, int) and bookmark > first:
            entry["replication_key_value"] = first
        self._following.follow(found)
        if isinstance(bookmark, int) and bookmark > first:
            entry["replication_key_value"] = bookmark

    def _write_again(self, event: dict[str, Any], second: int) -> None:
        """Write a re-read event again, as its page would have: derived rows first, then the record.

        It goes past the SDK's record loop (``_write_record_message``, the stream maps and
        selection applied; covered by tests/test_sdk_hooks.py): a record of an older second must
        neither trip the SDK's sort check nor move the bookmark.
        """
        event[REPLICATION_KEY] = second
        for child in self.derived_streams:
            child.write_rows(event)
        self._write_record_message(self.post_process(event))

    @override
    def derived_rows(self) -> dict[str, int]:
        return {child.name: child.rows_written for child in self.derived_streams}

    @override
    def derived_takers(self) -> list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]]]:
        """Each selected derived stream: its own bookmark's entry, and its rows written from an event."""
        return [
            (child.name, functools.partial(child.get_context_state, None), child.write_rows)
            for child in self.derived_streams
        ]

    @override
    def sideload_from(self, starts: Mapping[str, int]) -> int | None:
        """From the start when ``include_comment_events`` asks; else from where ``ticket_comments`` starts."""
        if self.settings.include_comment_events:
            return min(starts.values())
        return starts.get(TicketCommentsStream.name)

    @override
    def post_process(self, row: dict[str, Any], context: Context | None = None) -> dict[str, Any]:
        """Keep top-level ``via`` a string.

        (The event's derived rows were written before it, by the export's loop: see
        ``derived_takers``.) Every recorded event has a display string in ``via``; an object
        (seen only inside sideloaded comments) would make PipelineWise-family targets fail on
        the column type, so it is sent as its JSON text, and said once per run.
        """
        via = row.get("via")
        if via is not None and not isinstance(via, str):
            row["via"] = derived.as_text(via)
            if not self._via_object_logged:
                self._via_object_logged = True
                self.logger.info(
                    "An event's top-level 'via' is an object; it is emitted as JSON text (event %s).", row.get("id")
                )
        return row

    @override
    def generate_child_contexts(self, record: dict[str, Any], context: Context | None) -> Iterable[Context | None]:
        """None: derived rows are written from ``post_process``, never by a sync per event.

        The SDK's child sync would run once per event (a SCHEMA, a log line and a STATE each).
        """
        return ()


class TicketMetricEventsStream(ZendeskExportStream):
    """SLA and reply-time measurements (``/api/v2/incremental/ticket_metric_events``).

    Same time-based envelope as ticket events; an item's second is its ISO ``time`` (see
    ``pages.item_second``).
    """

    name = "ticket_metric_events"
    # Optional: without a catalog (or Meltano `select`) asking for it, it sends no request
    # and does not share the budget with ticket_events.
    selected_by_default = False
    path = "/api/v2/incremental/ticket_metric_events.json"
    records_key = "ticket_metric_events"
    schema = StreamSchema(SCHEMAS)


class DerivedStream(Stream):
    """Rows made from each ticket event, written while ``ticket_events`` reads its pages.

    A child of ``ticket_events`` to the SDK, so that selecting it alone makes the export run
    (without writing ``ticket_events`` records). It keeps a bookmark of its own: the export's
    walk starts at the earliest start of the streams it serves, and this stream writes from its
    own (see ``ZendeskExportStream.get_records``). Not selected by default.
    """

    parent_stream_type = TicketEventsStream
    selected_by_default = False
    state_partitioning_keys: ClassVar[list[str]] = []
    primary_keys: ClassVar[list[str]] = ["id"]
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE  # rows are built from JSON types
    derive: ClassVar[Callable[[dict[str, Any]], list[dict[str, Any]]]]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Nothing of its own: ``ticket_events`` writes this stream's rows."""
        return ()

    rows_written = 0
    _counter: metrics.Counter | None = None

    def write_schema(self) -> None:
        # Private SDK member: no public way to write a stream's SCHEMA (tests/test_sdk_hooks.py).
        self._write_schema_message()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count the rows written meanwhile in the SDK's ``record_count`` METRIC (logged at the end too)."""
        with self.get_record_counter() as counter:
            self._counter = counter
            try:
                yield
            finally:
                self._counter = None

    @cached_property
    def _plain(self) -> bool:
        """True when the SDK's record path could change nothing for these rows.

        No stream map, no flattening, no deselected property: rows then skip that path, which
        cost more than half of a run for four or five rows per event (``python3 tasks.py bench``).
        """
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
            return False
        if maps[0].stream_alias != self.name or maps[0].flattening_enabled:
            return False
        return all(self.mask.get(("properties", name), True) for name in self.schema["properties"])

    def write_rows(self, event: dict[str, Any]) -> None:
        self.emit(type(self).derive(event))

    def emit(self, rows: list[dict[str, Any]]) -> None:
        """Write rows of this stream (made from an event, or by the redaction step)."""
        if not rows:
            return
        if not self._plain:
            for row in rows:
                # Private SDK member: the SDK's own record path, maps applied (tests/test_sdk_hooks.py).
                self._write_record_message(row)
        else:
            extracted = datetime.now(UTC)
            for row in rows:
                # Private SDK member: the tap's message writer, without the map path (tests/test_sdk_hooks.py).
                self._tap.write_message(RecordMessage(stream=self.name, record=row, time_extracted=extracted))
        self.rows_written += len(rows)
        if self._counter is not None:
            self._counter.increment(len(rows))


class TicketFieldHistoryStream(DerivedStream):
    """One row per field a ``Create`` or ``Change`` child event sets (see ``derived.field_history``)."""

    name = "ticket_field_history"
    schema = StreamSchema(SCHEMAS)
    derive = derived.field_history


class TicketCommentsStream(DerivedStream):
    """One row per sideloaded comment (see ``derived.comments``)."""

    name = "ticket_comments"
    schema = StreamSchema(SCHEMAS)
    derive = derived.comments


class TicketRedactionsStream(DerivedStream):
    """One row per comment or attachment redaction (see ``redactions.redaction_row``).

    For destinations that keep every version of a row (files, append-only loads): what a purge
    must erase. Its rows are written by the redaction step (``follow.py``), once it has read
    which comment and audit each redaction erased from.
    """

    name = "ticket_redactions"
    schema = StreamSchema(SCHEMAS)

    @override
    def write_rows(self, event: dict[str, Any]) -> None:
        """Nothing per event: see the class."""
