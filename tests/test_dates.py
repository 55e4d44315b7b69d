"""Dates said in one line (issue 23, point 4): a bookmark in milliseconds, a start in the future.

A millisecond bookmark ended in "Unexpected error (ValueError: year 55840 is out of range)";
a start_date or a bookmark in the future (a mistyped year) exited 0 run after run, saying only
that the start "is within the last minute Zendesk never serves". The tap's clock is a virtual
one here (tests/virtual_clock.py), installed where the tap reads the time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tap_zendesk_ticket_events import settings as settings_module
from tap_zendesk_ticket_events import start as start_module
from tap_zendesk_ticket_events.errors import ConfigError
from tap_zendesk_ticket_events.settings import Settings
from tests.conftest import make_config
from tests.runners import run_tap_in_process, selecting
from tests.virtual_clock import VirtualClock
from zendesk_simulator import Simulator, make_events

DAY = 86_400


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The clock the tap's date rules read (settings.py, start.py)."""
    virtual = VirtualClock()
    virtual.install(monkeypatch, settings_module, start_module)
    return virtual


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def state_of(stream: str, value: Any) -> dict[str, Any]:
    return {"bookmarks": {stream: {"replication_key": "end_time", "replication_key_value": value}}}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def test_a_millisecond_bookmark_is_read_as_milliseconds_and_said(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(300)
    sim.set_events(events)
    middle = events[150]["timestamp"]

    run = run_tap_in_process(tmp_path, make_config(sim), state=state_of("ticket_events", middle * 1000))

    assert run.returncode == 0, run.stderr
    assert sim.export_requests()[0].params["start_time"] == str(middle)
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line and "milliseconds" in line]
    assert len(warnings) == 1
    assert "'ticket_events'" in warnings[0]
    assert str(middle * 1000) in warnings[0]
    assert f"read as {middle} seconds" in warnings[0]
    assert {r["id"] for r in run.records} == {e["id"] for e in events if e["timestamp"] >= middle}
    assert run.bookmark == max(e["timestamp"] for e in events)  # written back in seconds
    assert "Unexpected error" not in run.stderr


def test_a_start_date_in_the_future_is_one_line_and_exit_1(sim: Simulator, tmp_path: Path, clock: VirtualClock) -> None:
    sim.set_events(make_events(10))
    typo = iso(clock.time() + 180 * DAY)  # a mistyped year or month

    run = run_tap_in_process(tmp_path, make_config(sim, start_date=typo))

    assert run.returncode == 1
    (line,) = error_lines(run.stderr)
    assert "Setting 'start_date' is in the future" in line
    assert typo in line
    assert "Traceback" not in run.stderr
    assert sim.requests == []


def test_a_bookmark_in_the_future_is_one_line_and_exit_1(sim: Simulator, tmp_path: Path, clock: VirtualClock) -> None:
    sim.set_events(make_events(10))
    future = int(clock.time()) + 365 * DAY

    run = run_tap_in_process(tmp_path, make_config(sim), state=state_of("ticket_events", future))

    assert run.returncode == 1
    (line,) = error_lines(run.stderr)
    assert "The state's bookmark for 'ticket_events' is in the future" in line
    assert str(future) in line
    assert sim.requests == []
    assert "within the last minute" not in run.stderr


def test_a_future_bookmark_of_a_stream_not_selected_stays_as_it_is(
    sim: Simulator, tmp_path: Path, clock: VirtualClock
) -> None:
    events = make_events(50)
    sim.set_events(events)
    future = int(clock.time()) + 365 * DAY
    config = make_config(sim)

    run = run_tap_in_process(
        tmp_path,
        config,
        state=state_of("ticket_metric_events", future),
        extra_args=selecting(tmp_path, config, "ticket_events"),
    )

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 50
    assert run.states[-1]["bookmarks"]["ticket_metric_events"]["replication_key_value"] == future


@pytest.mark.parametrize("source", ["start_date", "bookmark"])
def test_a_start_within_the_last_minute_is_nothing_to_export_yet(
    sim: Simulator, tmp_path: Path, clock: VirtualClock, source: str
) -> None:
    sim.set_events(make_events(10))
    recent = int(clock.time()) - 30
    if source == "start_date":
        run = run_tap_in_process(tmp_path, make_config(sim, start_date=iso(recent)))
    else:
        run = run_tap_in_process(tmp_path, make_config(sim), state=state_of("ticket_events", recent))

    assert run.returncode == 0, run.stderr
    assert "is within the last minute Zendesk never serves" in run.stderr
    assert sim.export_requests() == []
    assert error_lines(run.stderr) == []


def test_an_end_date_in_the_future_bounds_a_window_still_open(
    sim: Simulator, tmp_path: Path, clock: VirtualClock
) -> None:
    events = make_events(200)
    sim.set_events(events)

    run = run_tap_in_process(tmp_path, make_config(sim, end_date=iso(clock.time() + 30 * DAY)))

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 200


def test_settings_take_the_clock_they_are_given() -> None:
    config = {"api_url": "http://127.0.0.1:1", "access_token": "t", "start_date": "2030-01-01T00:00:00Z"}
    now_2029 = 1_861_920_000.0  # 2029-01-01
    with pytest.raises(ConfigError, match="'start_date' is in the future"):
        Settings.from_config(config, now=now_2029)
    assert Settings.from_config(config, now=now_2029 + 2 * 365 * DAY).start_time == 1_893_456_000
