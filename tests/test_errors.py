"""Failures: which are retried and how long the tap waits, which end the run, and how."""

from __future__ import annotations

import base64
import logging
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.runners import run_tap, run_tap_in_process, sync_in_process
from zendesk_simulator import Simulator, make_events


def test_wrong_api_token_fails_at_once_naming_the_settings(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    sim.api_token = "another-token"

    run = run_tap(tmp_path, make_config(sim))

    assert run.returncode == 1
    line = run.one_error_line()
    assert "401" in line
    assert "'email' and 'api_token'" in line
    assert "admin" in line
    assert len(sim.export_requests()) == 1


def test_wrong_access_token_names_access_token(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))

    run = run_tap(
        tmp_path,
        make_config(sim, email=None, api_token=None, access_token="expired-or-wrong"),
        env={"LOGLEVEL": "DEBUG"},
    )

    assert run.returncode == 1
    assert "'access_token'" in run.one_error_line()
    assert "expired-or-wrong" not in run.stderr


def test_bearer_token_auth_exports(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))

    run = run_tap_in_process(tmp_path, make_config(sim, email=None, api_token=None, access_token=sim.access_token))

    assert run.returncode == 0, run.stderr
    assert len(run.ids) == 20
    assert {r.authorization_scheme for r in sim.export_requests()} == {"Bearer"}


def test_forbidden_says_an_admin_role_is_needed(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    sim.faults.append("403")

    run = run_tap(tmp_path, make_config(sim))

    assert run.returncode == 1
    line = run.one_error_line()
    assert "403" in line
    assert "admin" in line


def test_no_help_desk_names_subdomain_or_api_url(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))

    run = run_tap(tmp_path, make_config(sim, api_url=sim.url + "/not-zendesk"))

    assert run.returncode == 1
    line = run.one_error_line()
    assert "404" in line
    assert "'subdomain' or 'api_url'" in line
    assert len(sim.requests) == 1


def test_429_waits_exactly_retry_after(sim: Simulator, waits: list[float], caplog: pytest.LogCaptureFixture) -> None:
    sim.set_events(make_events(100))
    sim.retry_after = 3
    sim.faults.append("429")

    with caplog.at_level(logging.INFO):
        run = sync_in_process(make_config(sim))

    assert run.returncode == 0, run.stderr
    assert [r.status for r in sim.export_requests()][:2] == [429, 200]
    assert waits == [3.0]  # what Retry-After said: no jitter, no default minute
    assert "waiting 3.0 s (Retry-After)" in caplog.text
    assert len(set(run.ids)) == 100


def test_429_without_retry_after_waits_a_minute(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(100))
    sim.faults.append("429-no-retry-after")

    run = sync_in_process(make_config(sim))

    assert run.returncode == 0, run.stderr
    assert waits == [60.0]
    assert len(set(run.ids)) == 100


def test_consecutive_429s_give_up_with_a_clear_error(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(100))
    sim.retry_after = 7
    sim.faults.extend(["429"] * 30)

    run = sync_in_process(make_config(sim))

    assert run.returncode == 1
    assert "TapError" in run.stderr
    assert "429" in run.stderr
    assert waits == [7.0] * 9
    assert len(sim.export_requests()) == 10


@pytest.mark.parametrize("faults", [["500", "502", "503"], ["reset", "truncated", "nonjson"]])
def test_transient_failures_are_retried_with_exponential_backoff(
    sim: Simulator, waits: list[float], faults: list[str]
) -> None:
    events = make_events(1_500)
    sim.set_events(events)
    sim.faults.extend(faults)

    run = sync_in_process(make_config(sim))

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    assert len(waits) == len(faults)
    for n, wait in enumerate(waits):
        assert 2.0 * 2**n <= wait <= 2.0 * 2**n + 1.0  # 2, 4, 8, 16 s plus up to 1 s of jitter


def test_retry_after_on_503_is_honoured(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(50))
    sim.retry_after = 13
    sim.faults.append("503-retry-after")

    run = sync_in_process(make_config(sim))

    assert run.returncode == 0, run.stderr
    assert waits == [13.0]


def test_persistent_server_errors_give_up_after_bounded_tries(sim: Simulator, waits: list[float]) -> None:
    events = make_events(1_500)
    sim.set_events(events)

    run_ok = sync_in_process(make_config(sim, page_size=1000))  # the first page lands
    assert run_ok.returncode == 0
    sim.requests.clear()
    sim.faults.extend(["500"] * 50)

    run = sync_in_process(make_config(sim, page_size=1000))

    assert run.returncode == 1
    assert "Giving up" in run.stderr
    assert len(sim.export_requests()) == 6
    assert len(waits) == 5


def test_slow_response_times_out_and_is_retried(sim: Simulator, waits: list[float]) -> None:
    sim.set_events(make_events(30))
    sim.faults.append("slow:2.5")

    run = sync_in_process(make_config(sim, request_timeout=1))

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids)) == 30
    assert len(waits) == 1


def test_failure_mid_export_keeps_the_last_page_state(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(2_000)
    sim.set_events(events)
    sim.faults.extend(["ok", "401"])

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=1000))

    assert run.returncode == 1
    assert len(run.ids) >= 1000
    assert run.bookmark is not None
    # Every event at or after the bookmark that was not emitted is still ahead of it.
    emitted = set(run.ids)
    assert all(e["timestamp"] >= run.bookmark for e in events if e["id"] not in emitted)


def test_no_secret_at_debug_level_in_success_or_failure(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(200))
    run_ok = run_tap(tmp_path, make_config(sim), env={"LOGLEVEL": "DEBUG"})
    assert run_ok.returncode == 0
    assert "DEBUG" in run_ok.stderr
    sim.faults.extend(["500", "401"])
    run_bad = run_tap(tmp_path, make_config(sim), env={"LOGLEVEL": "DEBUG"})
    assert run_bad.returncode == 1
    # run_tap itself asserts that neither secret appears; check the Basic header value too.
    basic = base64.b64encode(f"{sim.email}/token:{sim.api_token}".encode()).decode()
    assert basic not in run_ok.stderr + run_bad.stderr + run_ok.stdout
