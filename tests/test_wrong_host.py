"""A wrong host fails fast and names the setting (issue 23, point 5).

A name that did not resolve was retried six times (about 67 s) and ended "ConnectionError
talking to …", and the Errors table then said the network was down; ``--test`` did the same.
No packet leaves the machine: name lookups of the hosts below fail in this process as a
resolver answers an unknown name (EAI_NONAME), and every other name resolves as usual.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_zendesk_ticket_events.settings import TEST_REQUEST_TIMEOUT
from tests.conftest import make_config
from tests.runners import run_tap_in_process
from zendesk_simulator import Simulator, make_events

UNKNOWN = ("acme-typo.zendesk.com", "zendesk.example.invalid")
TEST_SECONDS = 15  # what the README promises for --test, whatever fails


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names looked up; the UNKNOWN ones do not resolve (as a resolver says of a mistyped name)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        asked.append(name)
        if name in UNKNOWN:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("address", "setting", "host"),
    [
        ({"api_url": None, "subdomain": "acme-typo"}, "subdomain", "acme-typo.zendesk.com"),
        ({"api_url": "https://zendesk.example.invalid"}, "api_url", "zendesk.example.invalid"),
    ],
)
@pytest.mark.parametrize("command", ["run", "--test"])
def test_a_name_that_does_not_resolve_is_said_at_once_naming_the_setting(
    sim: Simulator,
    tmp_path: Path,
    waits: list[float],
    lookups: list[str],
    address: dict[str, Any],
    setting: str,
    host: str,
    command: str,
) -> None:
    extra = ("--test",) if command == "--test" else ()

    run = run_tap_in_process(tmp_path, make_config(sim, **address), extra_args=extra)

    assert run.returncode == 1
    line = error_line(run.stderr)
    assert f"The host '{host}' does not resolve" in line
    assert f"check the setting '{setting}'" in line
    assert "not retried" in line
    assert waits == []  # no backoff: a wrong name stays wrong
    assert lookups.count(host) == 1


def test_a_refused_connection_is_retried_and_the_give_up_line_names_the_setting(
    tmp_path: Path, waits: list[float]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    config = {"api_url": url, "access_token": "t", "start_date": "2023-11-14T00:00:00Z"}

    run = run_tap_in_process(tmp_path, config)

    assert run.returncode == 1
    line = error_line(run.stderr)
    assert f"Giving up on the export request after 6 tries: ConnectionError talking to {url}" in line
    assert "connection refused" in line
    assert "check the setting 'api_url'" in line
    assert len(waits) == 5  # retried as any dropped connection: 2, 4, 8, 16, 32 s


def connection_test_failures() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "503 every time", {"faults": ["503"] * 20}
    yield "429 with a minute's Retry-After", {"faults": ["429"] * 20, "retry_after": 60}
    yield "reset every time", {"faults": ["reset"] * 20}
    yield "no answer in time", {"latency": TEST_REQUEST_TIMEOUT + 1.0}


@pytest.mark.parametrize(
    "failure", [f for _, f in connection_test_failures()], ids=[n for n, _ in connection_test_failures()]
)
def test_connection_test_ends_within_seconds_whatever_fails(
    sim: Simulator, tmp_path: Path, waits: list[float], failure: dict[str, Any]
) -> None:
    """Counted, not timed: the tries' timeouts plus the waits asked for stay under 15 s."""
    sim.set_events(make_events(20))
    sim.faults.extend(failure.get("faults", []))
    sim.retry_after = failure.get("retry_after", sim.retry_after)
    sim.latency = failure.get("latency", 0.0)

    run = run_tap_in_process(tmp_path, make_config(sim), extra_args=("--test",))

    assert run.returncode == 1
    error_line(run.stderr)
    tries = len(sim.export_requests())
    assert 1 <= tries <= 3
    assert tries * TEST_REQUEST_TIMEOUT + sum(waits) < TEST_SECONDS - 2  # 2 s for start-up and name lookups


def test_connection_test_to_a_closed_port_ends_within_seconds(tmp_path: Path, waits: list[float]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    config = {"api_url": url, "access_token": "t", "start_date": "2023-11-14T00:00:00Z"}

    run = run_tap_in_process(tmp_path, config, extra_args=("--test",))

    assert run.returncode == 1
    line = error_line(run.stderr)
    assert "connection refused" in line
    assert "check the setting 'api_url'" in line
    assert len(waits) + 1 <= 3
    assert (len(waits) + 1) * TEST_REQUEST_TIMEOUT + sum(waits) < TEST_SECONDS - 2
