"""Hard cases at scale: adaptive page size on timeouts, and the ticket_metric_events stream."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conftest import make_config
from tests.runners import run_tap_in_process, selecting, sync_in_process, tap_output
from zendesk_simulator import Simulator, make_events, make_metric_events


def test_pages_shrink_on_504_until_they_pass_and_the_export_completes(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(3_000)
    sim.set_events(events)
    sim.fault_above_per_page = 150  # the gateway times out above 150 events a page

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=1000))

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    sizes = [int(r.params["per_page"]) for r in sim.export_requests()]
    assert sizes[:4] == [1000, 500, 250, 125]  # halved on each 504, retried at once
    assert "retrying it with page size 500" in run.stderr
    # It grew back after a run of good pages, and shrank again when that failed.
    assert "page size raised to 250" in run.stderr
    assert max(Counter(r.params["start_time"] for r in sim.export_requests() if r.status == 200).values()) == 1


def test_intermittent_timeouts_lose_nothing(sim: Simulator, tmp_path: Path, waits: list[float]) -> None:
    """In process, with backoff's sleeps recorded (about 30 s of them): the timeouts are real."""
    events = make_events(4_000, bursts={1_700_002_000: 700})
    sim.set_events(events)
    sim.faults.extend(["ok", "504", "ok", "slow:2.5", "ok", "ok", "504", "504", "ok", "slow:2.5"] * 3)

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=400, request_timeout=1))

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    assert "no answer within request_timeout" in run.stderr


def test_timeouts_at_the_floor_are_failures_with_backoff(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(100))
    sim.fault_above_per_page = 0  # even the smallest page times out

    run = sync_in_process(make_config(sim, page_size=20))

    assert run.returncode == 1
    sizes = [int(r.params["per_page"]) for r in sim.export_requests()]
    assert sizes == [20] + [10] * 6  # one halving, then the bounded retries at the floor
    assert waits[0] == 0.0  # the halving is retried at once
    assert all(w >= 2 for w in waits[1:])  # then exponential backoff
    assert "Giving up" in run.stderr


def test_metric_events_export_with_its_own_bookmark(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(500))
    metric_events = make_metric_events(2_500, per_second=3)
    sim.set_metric_events(metric_events)

    config = make_config(sim, page_size=1000)
    both = selecting(tmp_path, config, "ticket_events", "ticket_metric_events")

    run = run_tap_in_process(tmp_path, config, extra_args=both)

    assert run.returncode == 0, run.stderr
    metric_records = [
        m["record"] for m in run.messages if m["type"] == "RECORD" and m["stream"] == "ticket_metric_events"
    ]
    assert Counter(r["id"] for r in metric_records) == Counter(e["id"] for e in metric_events)
    types = {r["type"] for r in metric_records}
    assert {"apply_sla", "update_status", "breach"} <= types
    assert all("policy" in r["sla"] for r in metric_records if r["type"] == "apply_sla")
    bookmarks = run.states[-1]["bookmarks"]
    assert set(bookmarks) == {"ticket_events", "ticket_metric_events"}
    last = metric_records[-1]["end_time"]
    assert bookmarks["ticket_metric_events"]["replication_key_value"] == last
    # Resuming reads only from the bookmark on.
    sim.requests.clear()
    again = run_tap_in_process(tmp_path, make_config(sim), state={"bookmarks": bookmarks}, extra_args=both)
    assert int(sim.export_requests("ticket_metric_events")[0].params["start_time"]) == last
    assert len([m for m in again.messages if m["type"] == "RECORD"]) < 20


def test_metric_event_bursts_and_stalls_follow_the_same_rules(sim: Simulator, tmp_path: Path) -> None:
    metric_events = make_metric_events(1_200)
    burst_time = metric_events[600]["time"]
    for event in metric_events[600:1_000]:
        event["time"] = burst_time  # 400 events in one second, pages of 100
    sim.set_metric_events(metric_events)

    config = make_config(sim, page_size=100)
    metric = selecting(tmp_path, config, "ticket_metric_events")

    run = run_tap_in_process(tmp_path, config, extra_args=metric)
    assert run.returncode == 0, run.stderr
    ids = [r["id"] for r in run.records_of("ticket_metric_events")]
    assert Counter(ids) == Counter(e["id"] for e in metric_events)

    sim.grow_bursts = False
    sim.requests.clear()
    stalled = run_tap_in_process(tmp_path, config, extra_args=metric)
    assert stalled.returncode == 1
    assert burst_time in stalled.stderr


def test_selecting_one_stream_sends_no_request_for_the_other(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(300))
    sim.set_metric_events(make_metric_events(300))
    config = make_config(sim)
    catalog = selecting(tmp_path, config, "ticket_metric_events")
    sim.requests.clear()

    run = run_tap_in_process(tmp_path, config, extra_args=catalog)

    assert run.returncode == 0, run.stderr
    assert sim.export_requests("ticket_events") == []
    assert len(sim.export_requests("ticket_metric_events")) == 1
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} == {"ticket_metric_events"}


def test_metric_events_are_not_selected_by_default(sim: Simulator, tmp_path: Path) -> None:
    """An optional stream stays off without a catalog, and says so in discovery for Meltano."""
    sim.set_events(make_events(300))
    sim.set_metric_events(make_metric_events(300))
    config = make_config(sim)

    run = run_tap_in_process(tmp_path, config)

    assert run.returncode == 0, run.stderr
    assert len(sim.export_requests("ticket_events")) == 1
    assert sim.export_requests("ticket_metric_events") == []
    assert {m["stream"] for m in run.messages if m["type"] in {"SCHEMA", "RECORD"}} == {"ticket_events"}
    assert set(run.states[-1]["bookmarks"]) == {"ticket_events"}

    discovered = tap_output("--discover")
    roots = {
        s["tap_stream_id"]: next(m["metadata"] for m in s["metadata"] if m["breadcrumb"] == [])
        for s in json.loads(discovered)["streams"]
    }
    assert roots["ticket_events"]["selected-by-default"] is True
    assert roots["ticket_metric_events"]["selected-by-default"] is False
    assert roots["ticket_metric_events"]["selected"] is False
