"""The API as it has really answered: recorded envelopes and shapes, exact-size seconds, odd states.

Each test here failed on the tap as it was before these rules (issue "Meet the real API").
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import iso, make_config
from tests.runners import run_tap, run_tap_in_process, selecting, sync_in_process
from zendesk_simulator import Simulator, event_second, make_events, make_metric_events, make_recorded_events

START = 1_700_000_000


def seconds_of_exactly(size: int, seconds: int, *, first_id: int = 7_100_000_000) -> list[dict[str, Any]]:
    """``seconds`` seconds two apart, each holding exactly ``size`` events, ids not in time order."""
    events = make_events(size * seconds, bursts={START + 2 * n: size for n in range(seconds)}, first_id=first_id)
    for n, event in enumerate(reversed(events)):
        event["id"] = first_id + 7 * n  # ids do not grow with time
    return events


@pytest.mark.parametrize("dialect", ["documented", "recorded"])
@pytest.mark.parametrize("size", [1, 7, 10])
def test_seconds_holding_exactly_page_size_events_export_whole(
    sim: Simulator, tmp_path: Path, size: int, dialect: str
) -> None:
    events = seconds_of_exactly(size, 12)
    sim.set_events(events)
    sim.dialect = dialect

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=size))

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    # At most one extra request per full second (the probe), plus the one past the end.
    assert len(sim.export_requests()) <= 2 * 12 + 2
    assert run.bookmark == START + 22


def test_a_never_growing_api_still_fails_naming_the_second(sim: Simulator, tmp_path: Path) -> None:
    events = seconds_of_exactly(10, 3) + seconds_of_exactly(25, 1, first_id=7_200_000_000)
    for event in events[-25:]:
        event["timestamp"] = START + 100
    sim.set_events(events)
    sim.grow_bursts = False

    run = run_tap(tmp_path, make_config(sim, page_size=10))

    assert run.returncode == 1
    assert len(run.error_lines) == 1
    assert str(START + 100) in run.error_lines[0]
    assert "Traceback" not in run.stderr
    # The exact-size seconds before it were exported whole; the state stays at the cut second.
    assert {e["id"] for e in events[:30]} <= set(run.ids)
    assert run.bookmark == START + 100
    starts = Counter(int(r.params["start_time"]) for r in sim.export_requests())
    assert starts[START + 100] == 2  # the page and its one probe, no loop


@pytest.mark.parametrize("dialect", ["recorded", "metric-example"])
def test_exports_without_end_of_stream_end_cleanly(sim: Simulator, tmp_path: Path, dialect: str) -> None:
    events = make_recorded_events(2_600)
    metric_events = make_metric_events(1_300, per_second=2)
    sim.set_events(events)
    sim.set_metric_events(metric_events)
    sim.dialect = dialect
    config = make_config(sim, page_size=500)

    run = run_tap_in_process(
        tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events", "ticket_metric_events")
    )

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    metric_ids = [r["id"] for r in run.records_of("ticket_metric_events")]
    assert Counter(metric_ids) == Counter(e["id"] for e in metric_events)
    # One request past the last page at most (and no probe: no page ended where it started full).
    assert len(sim.export_requests("ticket_events")) <= -(-2_600 // 500) + 1
    assert len(sim.export_requests("ticket_metric_events")) <= -(-1_300 // 500) + 1
    bookmarks = run.states[-1]["bookmarks"]
    assert bookmarks["ticket_events"]["replication_key_value"] == max(event_second(e) for e in events)


def test_an_empty_page_with_null_end_time_is_a_normal_end(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    later = START + 86_400 * 30
    for dialect in ("documented", "recorded"):
        sim.dialect = dialect
        body = json.loads(sim.payload(later, 1000, False, sim.url)[0])
        assert (body["ticket_events"], body["end_time"], body["next_page"]) == ([], None, None)
        run = run_tap_in_process(tmp_path, make_config(sim, start_date=iso(later)))
        assert run.returncode == 0, run.stderr
        assert run.records == []
        assert len(run.error_lines) == 0


def test_every_item_once_whatever_names_its_second(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(5_000, bursts={START + 4_000: 150})
    assert any("timestamp" not in e for e in events)
    sim.set_events(events)

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=100))

    assert run.returncode == 0, run.stderr
    counts = Counter(run.ids)
    assert set(counts) == {e["id"] for e in events}
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1][:5]


def test_an_item_without_id_stops_the_run_naming_its_page(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(1_000)
    broken = events[700]
    del broken["id"]
    sim.set_events(events)

    run = run_tap(tmp_path, make_config(sim, page_size=200))

    assert run.returncode == 1
    assert len(run.error_lines) == 1
    assert "without an 'id'" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    # What came before that page was emitted, and the state does not pass the broken item.
    assert len(run.ids) >= 500
    assert run.bookmark is not None
    assert run.bookmark <= event_second(broken)


@pytest.mark.parametrize(
    "value",
    [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20+00:00",
        "2023-11-14 22:13:20",
        "1700000000",
        1_700_000_000.7,
    ],
)
def test_bookmarks_in_any_reasonable_form(sim: Simulator, tmp_path: Path, value: object) -> None:
    sim.set_events(make_events(800))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": value}}}

    run = run_tap_in_process(tmp_path, make_config(sim), state=state)

    assert run.returncode == 0, run.stderr
    assert int(sim.export_requests()[0].params["start_time"]) == START
    assert run.records
    values = [s["bookmarks"]["ticket_events"]["replication_key_value"] for s in run.states]
    assert all(type(v) is int for v in values), values


@pytest.mark.parametrize(
    "state",
    [
        {"bookmarks": {"ticket_events": "2024-01-01"}},
        {"bookmarks": {"ticket_events": {"replication_key_value": {"at": 1}}}},
        {"bookmarks": ["ticket_events"]},
        {"bookmarks": {"ticket_events": {"replication_key_value": 1_700_000_000}}, "currently_syncing": 7},
    ],
    ids=["bookmark-a-string", "value-an-object", "bookmarks-a-list", "odd-currently-syncing"],
)
def test_no_state_ends_in_a_traceback(sim: Simulator, tmp_path: Path, state: dict[str, Any]) -> None:
    sim.set_events(make_events(100))

    run = run_tap(tmp_path, make_config(sim), state=state)

    assert "Traceback" not in run.stderr
    if run.returncode:
        assert run.returncode == 1
        assert len(run.error_lines) == 1, run.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_only_at_debug(sim: Simulator, tmp_path: Path) -> None:
    # A catalog whose schema holds a non-schema makes the SDK itself fail: an error no rule of
    # the tap foresaw.
    sim.set_events(make_events(50))
    config = make_config(sim)
    args = selecting(tmp_path, config, "ticket_events")
    catalog = json.loads(Path(args[1]).read_text())
    catalog["streams"][0]["schema"] = {"type": "object", "properties": {"id": "not a schema"}}
    Path(args[1]).write_text(json.dumps(catalog))

    quiet = run_tap(tmp_path, config, extra_args=args)
    loud = run_tap(tmp_path, config, extra_args=args, env={"LOGLEVEL": "DEBUG"})

    assert quiet.returncode == loud.returncode == 1
    assert len(quiet.error_lines) == 1, quiet.stderr
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr


def test_sigint_writes_state_and_exits_130(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(6_000))
    sim.latency = 0.05

    run = run_tap(tmp_path, make_config(sim, page_size=200), signal=signal.SIGINT, after=500)

    assert run.returncode == 130, run.stderr
    assert run.messages[-1]["type"] == "STATE"
    assert "Stopped by SIGINT" in run.stderr


def test_recorded_error_bodies(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(300))
    sim.retry_after = 7
    sim.faults.extend(["429-text", "ok"])
    run = sync_in_process(make_config(sim, page_size=1000))
    assert run.returncode == 0, run.stderr
    assert waits == [7]  # the plain-text 429's Retry-After was honoured
    assert len(run.ids) == 300

    sim.faults.extend(["403-object"])
    denied = sync_in_process(make_config(sim))
    assert denied.returncode == 1
    assert "403 Forbidden" in denied.stderr

    sim.now = time.time() - 86_400 * 365 * 5  # Zendesk's clock says every start is too recent
    sim.too_recent_text = True
    for status in (400, 422):
        sim.too_recent_status = status
        recent = sync_in_process(make_config(sim))
        assert recent.returncode == 0, recent.stderr
        assert recent.records == []


def test_comment_sideload_goes_to_the_ticket_events_export_only(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(200))
    sim.set_metric_events(make_metric_events(200))
    config = make_config(sim, include_comment_events=True)

    run = run_tap_in_process(
        tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events", "ticket_metric_events")
    )

    assert run.returncode == 0, run.stderr
    assert all(r.params.get("include") == "comment_events" for r in sim.export_requests("ticket_events"))
    metric = sim.export_requests("ticket_metric_events")
    assert metric
    assert all("include" not in r.params for r in metric)


def test_every_record_of_a_varied_export_validates_against_the_emitted_schema(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(3_000, bursts={START + 2_000: 40})
    events[5]["via"] = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}  # never seen live
    sim.set_events(events)
    sim.set_metric_events(make_metric_events(600))
    config = make_config(sim, include_comment_events=True, page_size=300)

    run = run_tap_in_process(
        tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events", "ticket_metric_events")
    )

    assert run.returncode == 0, run.stderr
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    for stream, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        records = run.records_of(stream)
        assert records
        for record in records:
            validator.validate(record)
    shapes = {key for r in run.records for c in r.get("child_events") or [] for key in c}
    assert {"custom_ticket_fields", "organization_id", "body"} <= shapes
    assert any("metadata" in r for r in run.records)
    assert json.loads(next(r for r in run.records if r["id"] == events[5]["id"])["via"]) == events[5]["via"]
    assert run.stderr.count("emitted as JSON text") == 1  # said once per run
