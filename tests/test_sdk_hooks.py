"""The SDK hooks the tap leans on: one test per private member, log text or override.

The tap relies on parts of singer-sdk that no changelog promises to keep: private members
(``_tap``, ``_write_schema_message``, ``_write_record_message``, ``_handle_termination``,
``_validate_config``), the exact text of log lines it filters,
a state key it removes, and overrides the SDK must keep calling. A newer SDK can
drop or rename any of them without an error: the tap would then quietly stop writing a
STATE per page, bypass its throttle, or print lines it means to hide. Each test here fails
with a message that names the hook, so that ``python3 tasks.py canary`` (the suite against
the newest SDK) says what broke. Every test runs the real tap against the simulator.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import singer_sdk.helpers._typing
from singer_sdk import RESTStream, Stream, Tap
from singer_sdk.authenticators import APIAuthenticatorBase
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage

from tap_zendesk_ticket_events.cli import RecordBatchingWriter
from tap_zendesk_ticket_events.client import ZendeskExportStream
from tap_zendesk_ticket_events.oauth_common import OAuthBearerAuthenticator
from tap_zendesk_ticket_events.streams import DerivedStream, TicketEventsStream
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tap_zendesk_ticket_events.throttle import PacedAdapter, ThrottledAdapter
from tests.conftest import START_DATE, make_config
from tests.runners import catalog_selecting, run_tap, sync_in_process
from zendesk_simulator import Simulator, event_second, make_events

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

T0 = 1_700_000_000

# --- every SDK member the tap overrides or reads still exists, with the same parameters --

#: (the tap's class, the SDK class it extends, members of the SDK's the tap overrides or uses)
OVERRIDES: list[tuple[type, type, tuple[str, ...]]] = [
    (
        ZendeskExportStream,
        RESTStream,
        (
            "TYPE_CONFORMANCE_LEVEL",
            "replication_key",
            "is_sorted",
            "primary_keys",
            "url_base",  # abstract: get_url builds each request's URL from it
            "requests_session",  # the SDK's session, the throttle mounted on it
            "compare_start_date",
            "get_new_paginator",  # abstract; None: the walk pages the export
            "parse_response",  # abstract; not called: get_records reads the pages
            "get_batch_config",
            "get_records",  # the export's loop
            "user_agent",
            "get_http_request_counter",  # the http_request_count METRIC, as the SDK's loop writes it
            "get_context_state",
            "tap_state",
            "selected_by_default",
            "logger",
        ),
    ),
    (
        TicketEventsStream,
        RESTStream,
        (
            "post_process",
            "schema",
            "get_records",
            "generate_child_contexts",
            "_write_record_message",  # a redaction's re-read event, past the SDK's record loop
            "get_context_state",  # the bookmark held back while a page's redactions are followed
            "http_headers",
            "selected",
        ),
    ),
    (
        DerivedStream,
        Stream,
        (
            "parent_stream_type",
            "selected_by_default",
            "TYPE_CONFORMANCE_LEVEL",
            "get_records",
            "_write_schema_message",
            "_write_record_message",
            "get_record_counter",
        ),
    ),
    (
        TapZendeskTicketEvents,
        Tap,
        (
            "message_writer_class",
            "capabilities",
            "config_jsonschema",
            "discover_streams",
            "invoke",
            "load_state",
            "_validate_config",
            "state_writer",
            "_handle_termination",
            "get_singer_command",
            "cb_config",
            "cb_test",
            "streams",
            "logger",
        ),
    ),
    (RecordBatchingWriter, MsgSpecWriter, ("write_message", "format_message")),
    (OAuthBearerAuthenticator, APIAuthenticatorBase, ("authenticate_request",)),
]


_MISSING = object()


def _parameters(member: object) -> list[str] | None:
    """A method's parameter names (a property's getter's); None for a plain attribute, or
    for a method that passes ``*args, **kwargs`` on (it takes whatever the SDK sends)."""
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    if not inspect.isfunction(member):
        return None
    parameters = inspect.signature(member).parameters.values()
    if {p.kind for p in parameters} >= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        return None
    return [p.name for p in parameters]


@pytest.mark.parametrize(
    ("ours", "sdk", "name"),
    [(ours, sdk, name) for ours, sdk, names in OVERRIDES for name in names],
    ids=[f"{sdk.__name__}.{name}" for _, sdk, names in OVERRIDES for name in names],
)
def test_sdk_still_has_the_member_the_tap_overrides(ours: type, sdk: type, name: str) -> None:
    # Looked up statically: a class property of the SDK's may not be readable on its base class.
    assert inspect.getattr_static(sdk, name, _MISSING) is not _MISSING, (
        f"singer-sdk's {sdk.__name__} has no '{name}' any more: {ours.__name__} overrides or reads it, "
        "and the SDK no longer calls or provides it"
    )
    theirs = _parameters(inspect.getattr_static(sdk, name))
    mine = _parameters(inspect.getattr_static(ours, name, None))
    if theirs is not None and mine is not None:
        assert mine == theirs, (
            f"singer-sdk's {sdk.__name__}.{name} now takes {theirs}; {ours.__name__}.{name} takes {mine}"
        )


# --- helpers: the log lines of an in-process run (tests/runners.py's sync_in_process) -----


def without_the_taps_log_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let through the SDK lines the tap filters out, to see that the SDK still writes them."""
    for name in ("ticket_events", "ticket_metric_events"):
        logger = logging.getLogger(f"{TapZendeskTicketEvents.name}.{name}")
        kept = [f for f in logger.filters if not type(f).__module__.startswith("tap_zendesk_ticket_events")]
        monkeypatch.setattr(logger, "filters", kept)


def log_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


# --- private members ----------------------------------------------------------------------


def test_state_writer_writes_a_state_after_every_page(sim: Simulator) -> None:
    sim.set_events(make_events(450))

    run = sync_in_process(make_config(sim, page_size=100))

    assert run.error is None, run.error
    # The STATE after each page: records of a page, then a STATE covering them.
    pages_with_state = 0
    seen_record = False
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == "ticket_events":
            seen_record = True
        elif message["type"] == "STATE" and seen_record:
            pages_with_state += 1
            seen_record = False
    assert pages_with_state >= 5, (
        "Tap.state_writer.write_state(Stream.tap_state) no longer writes a STATE after each page of "
        f"100 records ({pages_with_state} STATE messages followed records, 5 pages were sent)"
    )


def test_requests_session_carries_the_throttled_adapter_every_request_uses(sim: Simulator) -> None:
    sim.set_events(make_events(300))

    run = sync_in_process(make_config(sim, page_size=100))

    assert run.error is None, run.error
    stream = run.tap.streams["ticket_events"]
    assert isinstance(stream, RESTStream)
    session = stream.requests_session
    assert isinstance(session.get_adapter(f"{sim.url}/api/v2/incremental/ticket_events.json"), ThrottledAdapter), (
        "RESTStream.requests_session no longer carries the tap's ThrottledAdapter: the throttle may be bypassed"
    )
    # Other requests (a ticket's comments) draw on the account-wide limit, not the export budget.
    assert isinstance(session.get_adapter(f"{sim.url}/api/v2/tickets/1/comments"), PacedAdapter)
    assert run.tap.throttle.requests == len(sim.export_requests(None)), (
        "not every export request went through the throttle: the SDK no longer sends through "
        "requests_session / _requests_session"
    )


def test_tap_is_the_streams_owner(sim: Simulator) -> None:
    tap = TapZendeskTicketEvents(config=make_config(sim))

    for stream in tap.streams.values():
        assert getattr(stream, "_tap", None) is tap, (
            "Stream._tap is not the tap that made the stream: the derived streams write their rows "
            "through its message writer"
        )


def test_derived_streams_ride_on_the_sdks_child_streams(sim: Simulator) -> None:
    """ticket_field_history alone: its rows come from the ticket events pages, and its own
    bookmark (in the SDK's state entry of the derived stream) moves page by page."""
    sim.set_events(make_events(300))
    config = make_config(sim, page_size=100)

    run = sync_in_process(config, catalog=catalog_selecting(config, "ticket_field_history"))

    assert run.error is None, run.error
    derived = [m for m in run.messages if m.get("stream") == "ticket_field_history"]
    assert [m["type"] for m in derived if m["type"] == "RECORD"], (
        "no ticket_field_history row: the derived streams are no longer among the SDK's "
        "Stream.child_streams (parent_stream_type), or Stream._write_record_message is gone"
    )
    assert [m["type"] for m in derived if m["type"] == "SCHEMA"] == ["SCHEMA"], (
        "ticket_field_history needs exactly one SCHEMA, before its rows: check "
        "Stream._write_schema_message and that generate_child_contexts still stops the SDK's per-event child sync"
    )
    assert derived[0]["type"] == "SCHEMA"
    assert run.records == []  # ticket_events itself is not selected...
    bookmarks = [
        m["value"]["bookmarks"].get("ticket_field_history", {}).get("replication_key_value")
        for m in run.of_type("STATE")
    ]
    assert len({b for b in bookmarks if b is not None}) >= 3, (
        "...yet the derived stream's own bookmark must advance page by page: ExportState.move no longer "
        f"moves it in the derived stream's Stream.get_context_state entry ({bookmarks})"
    )
    assert all(
        "replication_key_value" not in m["value"]["bookmarks"].get("ticket_events", {}) for m in run.of_type("STATE")
    )  # ...and ticket_events', not selected, stays as it was


def test_selected_by_default_keeps_the_optional_streams_off(sim: Simulator) -> None:
    sim.set_events(make_events(50))

    run = sync_in_process(make_config(sim))  # no catalog

    assert run.error is None, run.error
    assert sim.export_requests("ticket_metric_events") == [], (
        "ticket_metric_events was synced without being selected: the SDK no longer honours "
        "Stream.selected_by_default = False"
    )
    assert {m["stream"] for m in run.of_type("RECORD")} == {"ticket_events"}


def test_load_state_turns_a_date_time_bookmark_into_epoch_seconds(sim: Simulator) -> None:
    events = make_events(20, start=T0)
    sim.set_events(events)
    bookmark = events[10]["timestamp"]
    as_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bookmark))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": as_text}}}

    run = sync_in_process(make_config(sim), state=state)

    assert run.error is None, run.error
    assert sim.export_requests()[0].params["start_time"] == str(bookmark), (
        "a date-time bookmark was not read as its epoch second: Tap.load_state is no longer "
        "called with the state the tap was given"
    )


def test_handle_termination_exits_non_zero_after_the_last_state(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(3_000))
    sim.latency = 0.2  # 30 pages: long enough to be signalled mid-run
    # SIGTERM once the first page is out (its STATE written).
    run = run_tap(tmp_path, make_config(sim, page_size=100), signal=signal.SIGTERM, counting="STATE")
    messages, err = run.messages, run.stderr

    assert run.returncode == 128 + signal.SIGTERM, (
        f"exit {run.returncode} after SIGTERM: Tap._handle_termination (the SDK's signal handler, "
        f"overridden to exit non-zero) was not called\n{err[-600:]}"
    )
    assert messages[-1]["type"] == "STATE"
    assert "Stopped by SIGTERM" in err


class PipeBlockedOnce(io.RawIOBase):
    """stdout whose first write of a RECORD runs the signal handler inside it, as a write blocked
    on a full pipe does when the signal arrives (the handler runs before the write returns)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.handler: Any = None

    @override
    def writable(self) -> bool:
        return True

    @override
    def write(self, data: Any) -> int:
        handler, self.handler = self.handler, None
        if handler is not None and b'"type":"RECORD"' in bytes(data):
            handler()
        self.out += bytes(data)
        return len(data)


def test_a_signal_during_a_write_waits_for_the_line_then_writes_the_state(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK serializes into one shared buffer: the handler must not reuse it mid-write.

    Before, the final STATE was lost (Python 3.14: the buffer cannot be resized while written)
    or took the record's place in the line being written (older Pythons).
    """
    sim.set_events(make_events(10))
    tap = TapZendeskTicketEvents(config=make_config(sim))
    stdout = PipeBlockedOnce()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(stdout, buffer_size=1)))
    stdout.handler = lambda: tap._handle_termination(signal.SIGTERM, None)
    tap.state["bookmarks"] = {"ticket_events": {"replication_key": "end_time", "replication_key_value": 1}}
    record = RecordMessage(stream="ticket_events", record={"id": 1})

    with pytest.raises(SystemExit) as stopped:
        tap.message_writer.write_message(record)
    sys.stdout.flush()

    assert stopped.value.code == 128 + signal.SIGTERM
    lines = [json.loads(line) for line in stdout.out.decode().splitlines()]
    assert [m["type"] for m in lines] == ["RECORD", "STATE"]
    assert lines[0]["record"] == {"id": 1}
    assert lines[1]["value"]["bookmarks"]["ticket_events"]["replication_key_value"] == 1


@pytest.mark.parametrize("option", ["--config", "--state"])
def test_singer_command_checks_the_files_it_is_given(tmp_path: Path, option: str) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"api_url": "http://127.0.0.1:9", "access_token": "x", "start_date": START_DATE}))
    missing = tmp_path / "missing.json"
    args = (
        ["--config", str(missing)] if option == "--config" else ["--config", str(config_file), "--state", str(missing)]
    )

    proc = run_tap(tmp_path, extra_args=args)

    errors = [text for text in proc.stderr.splitlines() if "| ERROR" in text]
    assert proc.returncode == 1, (
        f"exit {proc.returncode} for a missing {option} file: the tap's Tap.get_singer_command / "
        f"Tap.cb_config hooks no longer check it\n{proc.stderr[-600:]}"
    )
    assert len(errors) == 1, proc.stderr
    assert "does not exist" in errors[0]
    assert str(missing) in errors[0]


# --- hooks the SDK must keep calling -----------------------------------------------------------


def test_a_page_of_only_duplicates_does_not_end_the_export(sim: Simulator, waits: list[float]) -> None:
    # 8 events one a second, 16 in the next second, 9 more: a first page of 20 grows to
    # the whole burst; the second page times out (504), the tap halves it to 10, and the
    # burst comes back alone, all duplicates. The export must go on past it.
    events = make_events(18, start=T0, per_second=1e9) + make_events(
        15, start=T0, bursts={T0 + 8: 15}, first_id=8_000_000_000
    )
    sim.set_events(events)
    sim.faults.extend(["ok", "504"])

    run = sync_in_process(make_config(sim, page_size=20))

    assert run.error is None, run.error
    assert waits == [0.0]  # the 504, cured at once by a smaller page
    assert sorted(r["id"] for r in run.records) == sorted(e["id"] for e in events), (
        "the export stopped at a page of only duplicates: the export's loop (get_records) must go "
        "on while the walk has a next request, whatever a page brought"
    )


def test_post_process_turns_an_object_via_into_json_text(sim: Simulator) -> None:
    events = make_events(3, start=T0)
    events[1]["via"] = {"channel": "api", "source": {"rel": None}}
    sim.set_events(events)

    run = sync_in_process(make_config(sim))

    assert run.error is None, run.error
    vias = [r["via"] for r in run.records]
    assert vias[1] == '{"channel":"api","source":{"rel":null}}', (
        f"Stream.post_process was not applied to the records (via: {vias[1]!r})"
    )


def test_type_conformance_level_none_leaves_values_as_decoded(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # A conforming SDK turns an integer in a boolean-only property into a bool; the tap
    # asks it not to touch records at all (TYPE_CONFORMANCE_LEVEL = NONE: two thirds of
    # its CPU). The schema is open and JSON-typed, so no record shows whether the SDK
    # conformed it: the level it passes to its conforming function does.
    levels: list[TypeConformanceLevel] = []
    conform = singer_sdk.helpers._typing.conform_record_data_types

    def spy(*args: Any, **kwargs: Any) -> Any:
        levels.append(kwargs["level"])
        return conform(*args, **kwargs)

    monkeypatch.setattr("singer_sdk.streams.core.conform_record_data_types", spy)
    events = make_events(1, start=T0)
    events[0]["child_events"] = [{"id": events[0]["id"] + 1, "event_type": "Change", "comment_present": 1}]
    sim.set_events(events)
    # The control: a stream asking for the SDK's default is conformed at that level.
    with monkeypatch.context() as conforming:
        conforming.setattr(ZendeskExportStream, "TYPE_CONFORMANCE_LEVEL", TypeConformanceLevel.RECURSIVE)
        assert sync_in_process(make_config(sim)).error is None
    assert levels == [TypeConformanceLevel.RECURSIVE], (
        f"the SDK conformed at {levels}: it no longer passes Stream.TYPE_CONFORMANCE_LEVEL to "
        "singer_sdk.streams.core.conform_record_data_types, once per record"
    )
    levels.clear()

    run = sync_in_process(make_config(sim))

    assert run.error is None, run.error
    assert levels == [TypeConformanceLevel.NONE], f"the SDK conformed the record at {levels}, not NONE"
    (record,) = run.records
    assert record["child_events"][0]["comment_present"] == 1
    assert record["child_events"][0]["comment_present"] is not True, (
        "the SDK conformed a record although the stream sets TYPE_CONFORMANCE_LEVEL = NONE: "
        "the SDK no longer reads Stream.TYPE_CONFORMANCE_LEVEL"
    )


def test_message_writer_class_writes_every_message_flushing_all_but_records(sim: Simulator) -> None:
    sim.set_events(make_events(300))

    run = sync_in_process(make_config(sim, page_size=100))

    assert run.error is None, run.error
    assert type(run.tap.message_writer) is RecordBatchingWriter, (
        "Tap.message_writer_class is no longer used to make the tap's message writer"
    )
    others = len(run.messages) - len(run.of_type("RECORD"))
    assert len(run.of_type("RECORD")) >= 300
    # RecordBatchingWriter flushes after every message but a RECORD; the SDK's own writers
    # flush after every message. Far fewer flushes than messages: it wrote them all.
    assert others <= run.flushes <= others + 1, (
        f"{run.flushes} flushes for {len(run.messages)} messages ({others} not RECORD): "
        "RecordBatchingWriter.write_message (MsgSpecWriter subclass) is bypassed by the SDK"
    )


def test_get_batch_config_keeps_batch_messages_off(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    batch = {"encoding": {"format": "jsonl"}, "storage": {"root": tmp_path.as_uri()}}

    run = sync_in_process(make_config(sim, batch_config=batch))

    assert run.error is None, run.error
    assert run.of_type("BATCH") == [], "Stream.get_batch_config no longer keeps the SDK from writing BATCH"
    assert len(run.records) == 50


def test_starting_replication_value_stays_out_of_every_state(sim: Simulator) -> None:
    sim.set_events(make_events(250))

    run = sync_in_process(make_config(sim, page_size=100))

    assert run.error is None, run.error
    for state in run.of_type("STATE"):
        for stream, bookmark in state["value"]["bookmarks"].items():
            # support_type_scope: the scope the ticket_events bookmark was made with (scope.py).
            assert set(bookmark) <= {"replication_key", "replication_key_value", "support_type_scope"}, (
                f"a STATE carries {sorted(bookmark)} for {stream}: the SDK's 'starting_replication_value' "
                "(removed through get_context_state) has changed name or place"
            )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"TAP_ZENDESK_TICKET_EVENTS_PAGE_SIZE": "0"}, "Invalid configuration: "),  # ConfigValidationError
        ({}, "Setting 'subdomain' is required"),  # the tap's own TapError
    ],
    ids=["config-validation-error", "tap-error"],
)
def test_invoke_ends_a_refused_configuration_with_one_line(env: dict[str, str], line: str, tmp_path: Path) -> None:
    proc = run_tap(
        tmp_path,
        extra_args=("--config", "ENV"),
        bare_env=True,
        env={"TAP_ZENDESK_TICKET_EVENTS_START_DATE": START_DATE, **env},
    )
    errors = [text for text in proc.stderr.splitlines() if "| ERROR" in text or "| CRITICAL" in text]
    assert proc.returncode == 1, proc.stderr
    assert len(errors) == 1, (
        "Tap.invoke (the tap's override ends a refused configuration with one line and exit 1) "
        f"was not reached, or the SDK now logs the failure itself too:\n{proc.stderr[-800:]}"
    )
    assert line in errors[0]
    assert "Traceback" not in proc.stderr


# --- the SDK log lines _SupersededSDKLines filters -------------------------------------------


def test_sdk_still_logs_starting_incremental_sync(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sim.set_events(make_events(20))
    with caplog.at_level(logging.INFO):
        sync_in_process(make_config(sim), before=lambda _: without_the_taps_log_filters(monkeypatch))
    assert any(m.startswith("Starting incremental sync of") for m in log_messages(caplog)), (
        "the SDK no longer logs 'Starting incremental sync of ...': _SupersededSDKLines in client.py "
        "filters a line that is gone or renamed (and would let the new one through)"
    )


def test_sdk_still_logs_an_unhandled_error(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sim.set_events(make_events(20))
    sim.faults.append("403")
    with caplog.at_level(logging.INFO):
        run = sync_in_process(make_config(sim), before=lambda _: without_the_taps_log_filters(monkeypatch))
    assert run.error is not None
    assert any(m.startswith("An unhandled error occurred") for m in log_messages(caplog)), (
        "the SDK no longer logs 'An unhandled error occurred ...': _SupersededSDKLines in client.py "
        "filters a line that is gone or renamed (and would let the new one through)"
    )


def test_the_filtered_lines_stay_out_of_the_taps_log(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    sim.set_events(make_events(20))
    sim.faults.extend(["ok", "403"])  # a second export request refused: an error mid-run
    with caplog.at_level(logging.INFO):
        run = sync_in_process(make_config(sim, page_size=10))
    assert run.error is not None
    superseded = ("Starting incremental sync of", "Pagination stopped after", "An unhandled error occurred")
    shown = [m for m in log_messages(caplog) if m.startswith(superseded)]
    assert shown == [], f"_SupersededSDKLines (added to Stream.logger) no longer filters: {shown}"


@pytest.mark.parametrize(
    ("ours", "sdk"), [(ours, sdk) for ours, sdk, _ in OVERRIDES], ids=[o.__name__ for o, _, _ in OVERRIDES]
)
def test_each_class_the_member_rows_check_extends_the_sdk_class_they_name(ours: type, sdk: type) -> None:
    """A row of OVERRIDES whose SDK class the tap's class no longer extends checks members the
    tap no longer inherits: its passing would prove nothing."""
    assert issubclass(ours, sdk), (
        f"{ours.__name__} no longer extends singer-sdk's {sdk.__name__}: update its OVERRIDES row"
    )
    assert issubclass(ZendeskExportStream, Stream)


def test_write_record_message_writes_an_older_record_past_the_sort_check(sim: Simulator, tmp_path: Path) -> None:
    """A redaction's re-read event is written with ``_write_record_message`` (streams.py): a
    record of an older second that neither trips ``check_sorted`` nor moves the bookmark back."""
    from tests.test_redaction_runs import Scenario  # noqa: PLC0415 - the redaction test's own scenario

    scene = Scenario(sim, tmp_path)
    first = scene.run()
    scene.redact_all(first.bookmark or 0)
    second = scene.run(first.states[-1])
    rewritten = [r for r in second.records if r["id"] in set(scene.planted.events_of.values())]
    assert rewritten
    assert all(r["end_time"] < (first.bookmark or 0) for r in rewritten)
    values = [s["bookmarks"]["ticket_events"]["replication_key_value"] for s in second.states]
    assert values == sorted(values)
    assert values[-1] == max(event_second(e) for e in sim.events)
