"""The Errors table (docs/errors.md) says what the tap really prints: each example, against a real run.

Every backticked example in the table's first column must be how the ERROR line of a run that
provokes it begins, with ``…`` standing for any text (the tap's real code, against the simulator).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_zendesk_ticket_events.cli import one_line_errors
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import make_config, run_tap, selecting, tap_command
from tests.docs import page
from zendesk_simulator import Simulator, make_events

ROOT = Path(__file__).resolve().parent.parent
START = 1_700_000_000


def table_examples() -> list[str]:
    """The backticked examples of the first column of the Errors table (docs/errors.md)."""
    section = page("docs/errors.md")
    table = section.split("| What you see |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    return [example for row in rows for example in re.findall(r"`([^`]+)`", row.split(" | ")[0])]


def matches(example: str, line: str) -> bool:
    """True when the line begins as the example shows it (``…``: any text in between)."""
    pattern = ".*".join(re.escape(part.strip()) for part in example.replace("\\|", "|").split("…"))
    return re.match(pattern, line.strip(), re.S) is not None


def error_line_in_process(config: dict[str, Any], caplog: pytest.LogCaptureFixture) -> str:
    """The one ERROR line a run logs, through the command line's own error handling."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    caplog.clear()
    try:
        with (
            caplog.at_level(logging.ERROR, logger="readme-errors"),
            contextlib.redirect_stdout(io.StringIO()),
            pytest.raises(SystemExit),
            one_line_errors(logging.getLogger("readme-errors")),
        ):
            TapZendeskTicketEvents(config=config).sync_all()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    lines = [r.getMessage() for r in caplog.records if r.name == "readme-errors" and r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines
    return lines[0]


def subprocess_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(lines) == 1, stderr
    return lines[0].split(" | ", 3)[-1]


Scenario = Callable[[Simulator, Path, pytest.LogCaptureFixture], str]


def scenarios() -> Iterator[tuple[str, Scenario]]:
    def config_error(**overrides: Any) -> Scenario:
        def run(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
            config = {k: v for k, v in make_config(sim, **overrides).items() if v is not None}
            return error_line_in_process(config, caplog)

        return run

    def faults(*names: str, **sim_attrs: Any) -> Scenario:
        def run(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
            for key, value in sim_attrs.items():
                setattr(sim, key, value)
            sim.faults.extend(names)
            return error_line_in_process(make_config(sim), caplog)

        return run

    def stall(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
        sim.set_events(make_events(60, start=START, bursts={START + 5: 50}))
        sim.grow_bursts = False  # an API that cuts a crowded second short
        return error_line_in_process(make_config(sim, page_size=10), caplog)

    def no_id(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
        events = make_events(20, start=START)
        del events[3]["id"]
        sim.set_events(events)
        return error_line_in_process(make_config(sim), caplog)

    def broken_pipe(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
        sim.set_events(make_events(3_000, start=START))
        (tmp_path / "config.json").write_text(json.dumps(make_config(sim, page_size=100)))
        tap = subprocess.Popen(
            [*tap_command(), "--config", str(tmp_path / "config.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert tap.stdout is not None
        tap.stdout.readline()
        tap.stdout.close()
        _, stderr = tap.communicate(timeout=120)
        return subprocess_error_line(stderr.decode())

    def unexpected(sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
        # A catalog whose schema holds a non-schema makes the SDK itself fail.
        config = make_config(sim)
        args = selecting(tmp_path, config, "ticket_events")
        catalog = json.loads(Path(args[1]).read_text())
        catalog["streams"][0]["schema"] = {"type": "object", "properties": {"id": "not a schema"}}
        Path(args[1]).write_text(json.dumps(catalog))
        return subprocess_error_line(run_tap(tmp_path, config, extra_args=args).stderr)

    yield "invalid configuration", config_error(page_size=0)
    yield "a setting", config_error(api_url=None, subdomain="https://acme.zendesk.com")
    yield "no auth", config_error(email=None, api_token=None)
    yield "two auth methods", config_error(access_token="tok")
    yield "401", faults(api_token="another-token")
    yield "403", faults("403")
    yield "404", faults("404")
    yield "429s", faults(*["429"] * 10, retry_after=0)
    yield "5xx", faults(*["503"] * 6)
    yield "connection", faults(*["reset"] * 6)
    yield "stall", stall
    yield "no id", no_id
    yield "broken pipe", broken_pipe
    yield "unexpected", unexpected


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each scenario's ERROR line (module-scoped: every example is checked against all of them)."""
    return {}


@pytest.mark.parametrize(("name", "scenario"), list(scenarios()), ids=[n for n, _ in scenarios()])
def test_each_error_the_table_lists_is_what_the_tap_prints(
    name: str,
    scenario: Scenario,
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    waits: list[float],
    produced: dict[str, str],
) -> None:
    if not sim.events:
        sim.set_events(make_events(30, start=START))
    line = scenario(sim, tmp_path, caplog)
    produced[name] = line
    assert any(matches(example, line) for example in table_examples()), (
        f"the README's Errors table has no example for what the tap printed ({name}): {line}"
    )


def test_every_example_in_the_table_was_printed_by_some_run(produced: dict[str, str]) -> None:
    assert len(produced) == len(list(scenarios())), "run with the scenarios above (the whole module)"
    for example in table_examples():
        assert any(matches(example, line) for line in produced.values()), (
            f"no run printed the README's example {example!r}: {sorted(produced.values())}"
        )
