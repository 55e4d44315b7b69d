"""Behaviour of a whole export against the simulator: no loss, no duplicate, safe state."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import jsonschema

from tests.conftest import iso, make_config
from tests.runners import run_tap, run_tap_in_process, selecting
from zendesk_simulator import Simulator, SimulatorServer, make_events, make_metric_events

BURST_SECOND = 1_700_003_000


def test_large_export_with_burst_emits_every_id_exactly_once(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(20_000, bursts={BURST_SECOND: 2_500})
    sim.set_events(events)

    run = run_tap_in_process(tmp_path, make_config(sim))

    assert run.returncode == 0, run.stderr
    counts = Counter(run.ids)
    assert set(counts) == {e["id"] for e in events}
    assert max(counts.values()) == 1
    # The burst second came whole in one oversized page, and was then stepped past.
    starts = [int(r.params["start_time"]) for r in sim.export_requests()]
    assert BURST_SECOND + 1 in starts
    # After a complete run the bookmark is the last page's end_time: the newest event.
    assert run.bookmark == max(e["timestamp"] for e in events)
    # A STATE after every page, not only at the end.
    assert len(run.states) >= len(sim.export_requests()) - 1


def test_pages_follow_end_time_and_stop_on_end_of_stream(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(2_350)
    sim.set_events(events)

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=1000))

    assert run.returncode == 0, run.stderr
    requests = sim.export_requests()
    # ceil(2350/1000) pages; the last one says end_of_stream although it carries a next_page.
    assert len(requests) == 3
    assert int(requests[0].params["start_time"]) == 1_699_920_000
    assert all(r.params["per_page"] == "1000" for r in requests)
    assert "include" not in requests[0].params
    assert sorted(run.ids) == sorted(e["id"] for e in events)


def test_records_keep_both_shapes_and_unknown_child_keys(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(400)
    sim.set_events(events)

    run = run_tap_in_process(tmp_path, make_config(sim))

    assert run.returncode == 0, run.stderr
    by_id = {r["id"]: r for r in run.records}
    for event in events:
        record = by_id[event["id"]]
        for key, value in event.items():
            if key == "child_events":
                for got, sent in zip(record[key], value, strict=True):
                    sent_public = {k: v for k, v in sent.items() if k != "_full"}
                    assert got == sent_public  # custom_field_<id> and every other key kept
            elif key != "via":
                assert record[key] == value
    assert any("metric" in r for r in run.records), "the documented (metric-event) shape must pass"
    # A top-level `via` object (never seen live, but possible) arrives as its JSON text.
    objects = [e for e in events if isinstance(e.get("via"), dict)]
    assert objects
    for event in objects:
        assert json.loads(by_id[event["id"]]["via"]) == event["via"]


def test_comment_events_sideload(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(300))

    run = run_tap_in_process(tmp_path, make_config(sim, include_comment_events=True, page_size=100))

    assert run.returncode == 0, run.stderr
    assert all(r.params.get("include") == "comment_events" for r in sim.export_requests())
    assert all(r.params.get("per_page") == "100" for r in sim.export_requests())
    comments = [c for r in run.records for c in r.get("child_events", []) if c.get("event_type") == "Comment"]
    assert comments
    assert all("body" in c and isinstance(c["via"], dict) for c in comments)


def test_schema_is_valid_json_schema_and_records_match_it(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(500))
    sim.set_metric_events(make_metric_events(500))

    config = make_config(sim, include_comment_events=True)
    both = selecting(tmp_path, config, "ticket_events", "ticket_metric_events")

    run = run_tap_in_process(tmp_path, config, extra_args=both)

    schema_messages = {m["stream"]: m for m in run.messages if m["type"] == "SCHEMA"}
    assert set(schema_messages) == {"ticket_events", "ticket_metric_events"}
    for other in schema_messages.values():
        jsonschema.Draft7Validator.check_schema(other["schema"])
    message = schema_messages["ticket_events"]
    assert message["key_properties"] == ["id"]
    assert message["bookmark_properties"] == ["end_time"]
    schema = message["schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    # Top-level `via` is a display string: strict loaders (PipelineWise, target-duckdb) map a type
    # list holding "object" to a JSON column and then fail on "Web form".
    assert schema["properties"]["via"]["type"] == ["string", "null"]
    assert '"anyOf":' not in json.dumps(schema)
    for stream, message in schema_messages.items():
        validator = jsonschema.Draft7Validator(message["schema"])
        records = run.records_of(stream)
        assert len(records) == 500
        for record in records:
            validator.validate(record)


def test_resumes_from_bookmark_and_reads_only_the_new_window(sim: Simulator, tmp_path: Path) -> None:
    first = make_events(1_500)
    sim.set_events(first)
    run1 = run_tap_in_process(tmp_path, make_config(sim))
    assert run1.returncode == 0, run1.stderr
    bookmark = run1.bookmark
    assert bookmark is not None
    assert bookmark == first[-1]["timestamp"]

    later = make_events(700, start=bookmark + 10, first_id=9_000_000_000, seed=11)
    sim.add_events(later)
    sim.requests.clear()
    run2 = run_tap_in_process(tmp_path, make_config(sim), state={"bookmarks": run1.states[-1]["bookmarks"]})

    assert run2.returncode == 0, run2.stderr
    assert int(sim.export_requests()[0].params["start_time"]) == bookmark
    new_ids = {e["id"] for e in later}
    assert new_ids <= set(run2.ids)
    # Only the boundary second is read again.
    assert set(run2.ids) - new_ids <= {e["id"] for e in first if e["timestamp"] == bookmark}


def test_unreadable_bookmark_is_refused_in_one_line(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": "soon"}}}

    run = run_tap(tmp_path, make_config(sim), state=state)

    assert run.returncode == 1
    assert len(run.error_lines) == 1
    assert "bookmark for 'ticket_events'" in run.error_lines[0]
    assert sim.export_requests() == []


def test_bookmark_older_than_start_date_starts_at_start_date(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": 1_600_000_000}}}

    run = run_tap_in_process(tmp_path, make_config(sim), state=state)

    assert run.returncode == 0, run.stderr
    assert int(sim.export_requests()[0].params["start_time"]) == 1_699_920_000


def test_end_date_stops_the_export_and_sets_a_safe_bookmark(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(3_000)
    sim.set_events(events)
    cut = events[1_234]["timestamp"]
    end_date = iso(cut)

    run = run_tap_in_process(tmp_path, make_config(sim, end_date=end_date, page_size=500))

    assert run.returncode == 0, run.stderr
    assert sorted(run.ids) == sorted(e["id"] for e in events if e["timestamp"] < cut)
    assert run.bookmark == cut
    assert all(int(r.params["start_time"]) < cut for r in sim.export_requests())


def test_recent_start_sends_no_request_and_keeps_state(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    recent = int(time.time()) - 30
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": recent}}}

    run = run_tap_in_process(tmp_path, make_config(sim), state=state)

    assert run.returncode == 0, run.stderr
    assert sim.export_requests() == []
    assert run.records == []
    assert run.bookmark == recent


def test_too_recent_answer_means_nothing_new(sim: Simulator, tmp_path: Path) -> None:
    # Zendesk's clock says the start is too recent although ours does not.
    sim.set_events(make_events(10))
    start = int(time.time()) - 3_600
    sim.now = start + 30
    for status in (422, 400):
        sim.too_recent_status = status
        state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": start}}}
        run = run_tap_in_process(tmp_path, make_config(sim), state=state)
        assert run.returncode == 0, run.stderr
        assert run.records == []
        assert run.bookmark == start
        assert "too recent" in run.stderr


def test_stalled_second_fails_after_emitting_what_came(sim: Simulator, tmp_path: Path) -> None:
    # An API that cuts a crowded second at per_page and repeats its start: naive taps loop.
    events = make_events(600, bursts={BURST_SECOND: 300})
    sim.set_events(events)
    sim.grow_bursts = False

    run = run_tap(tmp_path, make_config(sim, page_size=100))

    assert run.returncode == 1
    assert len(run.error_lines) == 1
    line = run.error_lines[0]
    assert str(BURST_SECOND) in line
    assert iso(BURST_SECOND) in line
    assert "Traceback" not in run.stderr
    before = {e["id"] for e in events if e["timestamp"] < BURST_SECOND}
    assert before <= set(run.ids)
    assert max(Counter(run.ids).values()) == 1
    # The state stays at the stalled second, so a later run re-reads it whole.
    assert run.bookmark == BURST_SECOND
    assert len(sim.export_requests()) < 20


def test_foreign_next_page_host_is_never_contacted(sim: Simulator, tmp_path: Path) -> None:
    foreign = Simulator()
    foreign_server = SimulatorServer(foreign).start()
    try:
        sim.set_events(make_events(2_500))
        sim.set_metric_events(make_metric_events(1_500))
        sim.next_page_host = foreign_server.url.replace("127.0.0.1", "localhost")

        config = make_config(sim, page_size=500)
        run = run_tap_in_process(
            tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events", "ticket_metric_events")
        )

        assert run.returncode == 0, run.stderr
        assert len(set(run.ids)) == 2_500
        assert len(run.records_of("ticket_metric_events")) == 1_500
        assert foreign.requests == []  # neither stream followed next_page
    finally:
        foreign_server.stop()
