"""The command line's own behaviour: ``--test``, and a target that stops reading.

These are about the process boundary (exit codes, stdout, stderr), so the tap runs as a
subprocess, as a scheduler runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_config
from tests.runners import assert_no_secret, run_tap, tap_output
from zendesk_simulator import Simulator, make_events

START = 1_700_000_000


def test_connection_test_costs_one_request_without_sideload_and_says_it_passed(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(500, start=START))
    # Everything that would make a real run sideload comments or send a full page.
    config = make_config(sim, include_comment_events=True, page_size=1000)

    run = run_tap(tmp_path, config, extra_args=("--test",))

    assert run.returncode == 0, run.stderr
    requests = sim.export_requests(None)
    assert len(requests) == 1
    (request,) = requests
    assert request.path.endswith("/ticket_events.json")
    assert "include" not in request.params
    assert request.params["per_page"] == "1"
    assert request.params["support_type_scope"] == "all"
    passed = [line for line in run.stderr.splitlines() if "Connection test passed" in line]
    assert len(passed) == 1, run.stderr
    assert sim.url in passed[0]
    assert "auth: API token" in passed[0]
    assert "1 event" in passed[0]
    assert "stopped" not in run.stderr
    assert '"status":"failed"' not in run.stderr
    assert run.messages == []  # nothing for a target


def test_connection_test_fails_in_one_line_on_refused_credentials(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(5, start=START))
    sim.api_token = "another-token"

    run = run_tap(tmp_path, make_config(sim), extra_args=("--test",))

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "401" in run.error_lines[0]
    assert "'email' and 'api_token'" in run.error_lines[0]
    assert "Traceback" not in run.stderr
    assert len(sim.export_requests(None)) == 1


def test_connection_test_refuses_a_bad_setting_before_any_request(sim: Simulator, tmp_path: Path) -> None:
    run = run_tap(tmp_path, make_config(sim, support_type_scope="bots"), extra_args=("--test",))

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "support_type_scope" in run.error_lines[0]
    assert sim.requests == []


def test_schema_test_sends_no_request(sim: Simulator, tmp_path: Path) -> None:
    run = run_tap(tmp_path, make_config(sim), extra_args=("--test=schema",))

    assert run.returncode == 0, run.stderr
    assert {m["stream"] for m in run.messages if m["type"] == "SCHEMA"} >= {"ticket_events"}
    assert sim.requests == []


def test_about_declares_the_test_capability() -> None:
    assert "test" in json.loads(tap_output("--about", "--format=json"))["capabilities"]


def test_a_target_that_stops_reading_is_named_as_the_cause(sim: Simulator, tmp_path: Path) -> None:
    """``tap | head`` or a crashed target: the tap's stdout closes under it."""
    sim.set_events(make_events(3_000, start=START))
    # A "target" that reads a few lines, then dies: its end of the pipe closes.
    tap = run_tap(tmp_path, make_config(sim, page_size=100), close_after=5)
    stderr = tap.stderr

    assert tap.returncode != 0
    assert_no_secret(stderr)
    errors = [line for line in stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]
    assert len(errors) == 1, stderr
    assert "The target stopped reading the tap's output" in errors[0]
    assert "look at the target's own error" in errors[0]
    assert "please report it" not in stderr
    assert "Unexpected error" not in stderr
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    # It stopped early: it did not export the rest into a closed pipe.
    assert len(sim.export_requests()) < 30
