"""Shared fixtures: a live simulator on loopback, its settings, backoff's recorded waits, PostgreSQL.

The ways to run the tap against them are in runners.py. The suite is hermetic: a developer's
``.env`` and their shell's settings variables reach no test (see ``pytest_configure`` here and
``tap_command`` in runners.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import backoff._sync
import pytest

from tests.runners import SETTINGS_PREFIXES
from zendesk_simulator import API_TOKEN, EMAIL, Simulator, SimulatorServer

START_DATE = "2023-11-14T00:00:00Z"  # 1699920000, before every simulated event
# The local PostgreSQL of the end-to-end tests (test_meltano.py, test_strict_targets.py).
PG_HOST, PG_PORT, PG_USER, PG_DATABASE = "127.0.0.1", "5432", "postgres", "postgres"
_SCRUBBED: dict[str, str] = {}


def _no_dotenv(*args: Any, **kwargs: Any) -> str:
    """What the SDK's ``find_dotenv`` finds for the tests: nothing."""
    return ""


def hide_dotenv_from_the_sdk() -> None:
    """Make the SDK's lookup of a ``.env`` find none (an SDK that looks elsewhere: test_hermetic.py fails)."""
    try:
        from singer_sdk.configuration import _dict_config  # noqa: PLC0415 - a private module, maybe gone
    except ImportError:
        return
    if hasattr(_dict_config, "find_dotenv"):
        _dict_config.find_dotenv = _no_dotenv


def pytest_configure(config: pytest.Config) -> None:
    """Make the suite hermetic, before collection (test_core.py builds the SDK's tests at import).

    - The settings variables of the shell are taken out of this process's environment, so
      neither the tests nor any process they start (the tap, Meltano, the targets) sees them.
    - The SDK reads a ``.env`` whenever settings come from the environment (``--config ENV``,
      ``parse_env_config=True``): ``python-dotenv``'s ``find_dotenv()`` walks up from the
      SDK's own file, in ``.venv`` inside the clone, to the clone's ``.env``, and loads it into
      ``os.environ``, over what is there. In this process it finds nothing; in the tap's
      subprocesses ``tap_command()`` does the same.
    """
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIXES)]:
        _SCRUBBED[name] = os.environ.pop(name)
    hide_dotenv_from_the_sdk()


def pytest_unconfigure(config: pytest.Config) -> None:
    os.environ.update(_SCRUBBED)


def record_backoff_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make backoff record its sleeps instead of sleeping them (the tap's own code still decides them)."""
    recorded: list[float] = []
    fake_time = types.SimpleNamespace(sleep=recorded.append, monotonic=time.monotonic)
    monkeypatch.setattr(backoff._sync, "time", fake_time)
    return recorded


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """backoff's sleeps, recorded instead of slept."""
    return record_backoff_sleeps(monkeypatch)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator()
    server = SimulatorServer(simulator).start()
    try:
        yield simulator
    finally:
        server.stop()


def iso(epoch: float) -> str:
    """An epoch second as the tap's settings and log lines write it (``2023-11-14T00:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def make_config(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url": sim.url,
        "email": EMAIL,
        "api_token": API_TOKEN,
        "start_date": START_DATE,
        "max_requests_per_minute": 10_000,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


class PsqlError(Exception):
    pass


def unavailable(reason: str) -> None:
    """Skip, except under CI=true, where the end-to-end tests must run: then fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so this end-to-end test must run, but {reason}")
    pytest.skip(reason)


def psql(sql: str) -> str:
    args = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    args += ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", PG_DATABASE, "-c", sql]
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PsqlError(f"psql timed out: {sql}") from exc
    if proc.returncode:
        raise PsqlError(proc.stderr.strip() or f"psql exited {proc.returncode}")
    return proc.stdout.strip()


@pytest.fixture
def pg_schema(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, unused schema name (e2e_<test module>_<random>); the schema is dropped at the end."""
    if shutil.which("psql") is None:
        unavailable("psql (the PostgreSQL client) is not installed")
    try:
        psql("select 1")
    except PsqlError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "no answer"
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) is unreachable: {first_line}")
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    schema = f"e2e_{module}_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        psql(f'drop schema if exists "{schema}" cascade')
