"""The Errors table (docs/errors.md) says what the tap really prints: each example, against a real run.

Every backticked example in the table's first column must be how the ERROR line of a run that
provokes it begins, with ``…`` standing for any text (the tap's real code, against the simulator).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_config, record_backoff_sleeps
from tests.docs import page
from tests.redaction_data import CARD, plant
from tests.runners import TapRun, run_tap, run_tap_in_process, selecting
from zendesk_simulator import EXPORT_PATHS, Simulator, SimulatorServer, make_events

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


def error_line(run: TapRun) -> str:
    """The message of the run's one ERROR line (what follows the log's time, level and logger)."""
    return run.one_error_line().split(" | ", 3)[-1]


Scenario = Callable[[Simulator, Path], str]


def scenarios() -> Iterator[tuple[str, Scenario]]:
    def config_error(**overrides: Any) -> Scenario:
        def run(sim: Simulator, tmp_path: Path) -> str:
            return error_line(run_tap_in_process(tmp_path, make_config(sim, **overrides)))

        return run

    def faults(*names: str, **sim_attrs: Any) -> Scenario:
        def run(sim: Simulator, tmp_path: Path) -> str:
            for key, value in sim_attrs.items():
                setattr(sim, key, value)
            sim.faults.extend(names)
            return error_line(run_tap_in_process(tmp_path, make_config(sim)))

        return run

    def stall(sim: Simulator, tmp_path: Path) -> str:
        sim.set_events(make_events(60, start=START, bursts={START + 5: 50}))
        sim.grow_bursts = False  # an API that cuts a crowded second short
        return error_line(run_tap_in_process(tmp_path, make_config(sim, page_size=10)))

    def no_id(sim: Simulator, tmp_path: Path) -> str:
        events = make_events(20, start=START)
        del events[3]["id"]
        sim.set_events(events)
        return error_line(run_tap_in_process(tmp_path, make_config(sim)))

    def bookmark(value: object) -> Scenario:
        def run(sim: Simulator, tmp_path: Path) -> str:
            state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": value}}}
            return error_line(run_tap_in_process(tmp_path, make_config(sim), state=state))

        return run

    def unknown_host(**address: Any) -> Scenario:
        def run(sim: Simulator, tmp_path: Path) -> str:
            def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # no packet leaves

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(socket, "getaddrinfo", getaddrinfo)
                return error_line(run_tap_in_process(tmp_path, make_config(sim, **address)))

        return run

    def refused(sim: Simulator, tmp_path: Path) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return error_line(run_tap_in_process(tmp_path, make_config(sim, api_url=f"http://127.0.0.1:{port}")))

    def broken_pipe(sim: Simulator, tmp_path: Path) -> str:
        sim.set_events(make_events(3_000, start=START))
        return error_line(run_tap(tmp_path, make_config(sim, page_size=100), close_after=1))

    def reread(sim: Simulator, tmp_path: Path) -> str:
        events = make_events(200, start=START)
        planted = plant(events)
        sim.set_events(events)
        sim.redact_comment(planted.comment_ids[0], CARD, at=START + 300)
        sim.redactions.faults.extend(["503"] * 6)
        return error_line(run_tap_in_process(tmp_path, make_config(sim, include_comment_events=True)))

    def unexpected(sim: Simulator, tmp_path: Path) -> str:
        # A catalog whose schema holds a non-schema makes the SDK itself fail.
        config = make_config(sim)
        args = selecting(tmp_path, config, "ticket_events")
        catalog = json.loads(Path(args[1]).read_text())
        catalog["streams"][0]["schema"] = {"type": "object", "properties": {"id": "not a schema"}}
        Path(args[1]).write_text(json.dumps(catalog))
        return error_line(run_tap(tmp_path, config, extra_args=args))

    def client_credentials(secret: str | None = None, **oauth: Any) -> Scenario:
        """OAuth client credentials (``secret``, else the right one) against an OAuth server set up by ``oauth``."""

        def run(sim: Simulator, tmp_path: Path) -> str:
            for key, value in oauth.items():
                setattr(sim.oauth, key, value)
            config = make_config(
                sim,
                email=None,
                api_token=None,
                client_id=sim.oauth.client_id,
                client_secret=secret or sim.oauth.client_secret,
            )
            return error_line(run_tap_in_process(tmp_path, config))

        return run

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
    yield "refused", refused
    yield "unknown subdomain", unknown_host(api_url=None, subdomain="acme-typo")
    yield "unknown api_url host", unknown_host(api_url="https://zendesk.example.invalid")
    yield "stall", stall
    yield "empty page going nowhere", faults("empty-stuck")
    yield "no id", no_id
    yield "bookmark in the future", bookmark(4_102_444_800)  # 2100-01-01
    yield "bookmark unreadable", bookmark("last tuesday")
    yield "redaction re-read", reread
    yield "broken pipe", broken_pipe
    yield "unexpected", unexpected
    yield "client credentials: wrong secret", client_credentials("another-secret")
    yield "client credentials: public client", client_credentials(confidential=False)
    yield "client credentials: missing scope", client_credentials(required_scopes=dict.fromkeys(EXPORT_PATHS, "x:read"))
    yield "client credentials: creator not an admin", client_credentials(creator_is_admin=False)


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | BaseException]:
    """Every scenario's ERROR line (or what its run raised), each run once, on a simulator of its
    own, whichever of this module's tests are selected and in whatever order."""
    lines: dict[str, str | BaseException] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        record_backoff_sleeps(monkeypatch)
        for name, scenario in scenarios():
            sim = Simulator()
            server = SimulatorServer(sim).start()
            try:
                sim.set_events(make_events(30, start=START))
                lines[name] = scenario(sim, tmp_path_factory.mktemp("readme-errors"))
            except Exception as exc:  # the scenario's own test reports it
                lines[name] = exc
            finally:
                server.stop()
    return lines


def line_of(produced: dict[str, str | BaseException], name: str) -> str:
    line = produced[name]
    if isinstance(line, BaseException):
        raise line
    return line


@pytest.mark.parametrize("name", [n for n, _ in scenarios()])
def test_each_error_the_table_lists_is_what_the_tap_prints(name: str, produced: dict[str, str | BaseException]) -> None:
    line = line_of(produced, name)
    assert any(matches(example, line) for example in table_examples()), (
        f"the README's Errors table has no example for what the tap printed ({name}): {line}"
    )


def test_every_example_in_the_table_was_printed_by_some_run(produced: dict[str, str | BaseException]) -> None:
    assert len(produced) == len(list(scenarios())), "run with the scenarios above (the whole module)"
    lines = [line_of(produced, name) for name in produced]
    for example in table_examples():
        assert any(matches(example, line) for line in lines), (
            f"no run printed the README's example {example!r}: {sorted(lines)}"
        )
