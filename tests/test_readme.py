"""The README as a new user reads it: its settings table, and the commands of docs/running.md, run as written."""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.runners
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import make_config
from tests.docs import README, ROOT, marked_block, pages
from tests.runners import assert_no_secret, bookmark_of, run_command, tap_output
from zendesk_simulator import Simulator, make_events

TARGET_JSONL = "target-jsonl==0.1.4"  # the version the README installs


def test_readme_settings_table_matches_about() -> None:
    about = tap_output("--about", "--format=markdown")
    table = [line for line in about.splitlines() if line.startswith("|")]
    text = README.read_text()
    documented = text.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    assert [line for line in documented.splitlines() if line.startswith("|")] == table


def test_the_runners_the_development_notes_name_are_the_runners() -> None:
    """The paragraph on tests/runners.py (README, or a page of docs/) names each runner, and
    only runners that exist."""
    paragraphs = [p for page in pages() for p in page.read_text().split("\n\n") if "`tests/runners.py`" in p]
    assert paragraphs, "no paragraph of the README or docs/ describes tests/runners.py"
    named = {n for p in paragraphs for n in re.findall(r"`((?:run|start|sync)_\w+)`", p)}
    named -= {n for n in named if hasattr(TapZendeskTicketEvents, n)}  # the tap's own (sync_all)
    runners = {
        n for n, f in vars(tests.runners).items() if n.startswith(("run_", "start_", "sync_")) and inspect.isfunction(f)
    }
    assert named == runners, f"named: {sorted(named)}; tests/runners.py has {sorted(runners)}"


# The marked blocks moved into docs/ with their sections; the old name still finds them there.
readme_block = marked_block


@pytest.fixture(scope="session")
def target_jsonl_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``target-jsonl`` in a virtualenv of its own, beside the tap's, as the README installs it."""
    venv = tmp_path_factory.mktemp("target-jsonl") / "venv"
    uv = Path(sys.executable).parent / "uv"
    for args in (
        [uv, "venv", "--quiet", venv, "--python", sys.executable],
        [uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", TARGET_JSONL],
    ):
        proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"installing {TARGET_JSONL} failed (PyPI unreachable?):\n{proc.stderr}"
    return venv / "bin"


def run_running_it(workdir: Path, target_bin: Path) -> subprocess.CompletedProcess[str]:
    """The "Running it" lines (docs/running.md), as written, in ``workdir`` with both commands on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_ZENDESK_TICKET_EVENTS_")}
    env.pop("VIRTUAL_ENV", None)
    # As the README's Install exports it: the tap's virtualenv first, the target's last.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", ""), str(target_bin)])
    proc = run_command(["bash", "-c", readme_block("running-it")], cwd=workdir, env=env, timeout=180)
    assert_no_secret(proc.stdout, proc.stderr)
    return proc


def landed(workdir: Path) -> list[dict[str, Any]]:
    """Every record target-jsonl wrote, over all its per-run files."""
    files = sorted(workdir.glob("ticket_events-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def saved_bookmark(workdir: Path) -> int:
    return bookmark_of(json.loads((workdir / "state.json").read_text()))


@pytest.fixture
def simulator_as_documented() -> Iterator[str]:
    """The simulator started as the README says; yields the config line it prints."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "zendesk_simulator", "--events", "5000", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        prefix = "config.json for the tap: "
        config = next((line for line in proc.stdout if line.startswith(prefix)), "")
        assert config, "the simulator did not print its config.json"
        yield config.removeprefix(prefix)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()  # left open, it is a ResourceWarning (an error in this suite)


@pytest.mark.target
def test_running_it_as_written_on_the_simulator_it_describes(
    tmp_path: Path, target_jsonl_bin: Path, simulator_as_documented: str
) -> None:
    """First run, then a resume, with the README's lines and the config the simulator prints."""
    (tmp_path / "config.json").write_text(simulator_as_documented)
    events = make_events(5000)  # what `--events 5000` serves
    last = max(e["timestamp"] for e in events)

    first = run_running_it(tmp_path, target_jsonl_bin)

    assert first.returncode == 0, first.stderr
    assert "(1699920000, start_date; no bookmark yet)" in first.stderr
    assert sorted(r["id"] for r in landed(tmp_path)) == sorted(e["id"] for e in events)
    assert saved_bookmark(tmp_path) == last
    assert "ticket_events: done: 5,000 events" in first.stderr

    again = run_running_it(tmp_path, target_jsonl_bin)

    assert again.returncode == 0, again.stderr
    assert f"({last}, the bookmark)" in again.stderr
    reread = len(landed(tmp_path)) - len(events)
    assert reread == sum(1 for e in events if e["timestamp"] == last)  # the boundary second only
    assert saved_bookmark(tmp_path) == last


@pytest.mark.target
def test_running_it_from_a_failed_first_run_through_new_events(
    sim: Simulator, tmp_path: Path, target_jsonl_bin: Path
) -> None:
    """A first run that stores no STATE leaves no state.json; the next ones start, then resume."""
    (tmp_path / "config.json").write_text(json.dumps(make_config(sim)))
    first_events = make_events(1_500, seed=41)
    sim.set_events(first_events)
    sim.faults.append("401")

    failed = run_running_it(tmp_path, target_jsonl_bin)

    assert "Zendesk refused the credentials (401" in failed.stderr
    assert not (tmp_path / "state.json").exists()

    first = run_running_it(tmp_path, target_jsonl_bin)

    assert first.returncode == 0, first.stderr
    assert {r["id"] for r in landed(tmp_path)} == {e["id"] for e in first_events}
    bookmark = saved_bookmark(tmp_path)
    assert bookmark == max(e["timestamp"] for e in first_events)

    more = make_events(700, start=bookmark, first_id=max(e["id"] for e in first_events) + 11, seed=42)
    sim.add_events(more)
    seen = len(sim.export_requests())

    resumed = run_running_it(tmp_path, target_jsonl_bin)

    assert resumed.returncode == 0, resumed.stderr
    requests = sim.export_requests()[seen:]
    assert requests[0].params["start_time"] == str(bookmark)
    assert {r["id"] for r in landed(tmp_path)} == {e["id"] for e in first_events + more}
    assert saved_bookmark(tmp_path) == max(e["timestamp"] for e in more)
