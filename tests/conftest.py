"""Shared fixtures: a live simulator on loopback, and ways to run the real tap against it.

The suite is hermetic: a developer's ``.env`` and their shell's settings variables reach no
test (see ``pytest_configure`` and ``tap_command``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import types
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backoff._sync
import pytest

from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from zendesk_simulator import ACCESS_TOKEN, API_TOKEN, EMAIL, Simulator, SimulatorServer

SECRETS = (API_TOKEN, ACCESS_TOKEN)
START_DATE = "2023-11-14T00:00:00Z"  # 1699920000, before every simulated event
# The local PostgreSQL of the end-to-end tests (test_meltano.py, test_strict_targets.py).
PG_HOST, PG_PORT, PG_USER, PG_DATABASE = "127.0.0.1", "5432", "postgres", "postgres"
# Variables that configure the tap, the targets or Meltano: a developer's shell may hold them
# (from a real account), and no test may see them. Tests that want one set it themselves.
SETTINGS_PREFIXES = ("TAP_ZENDESK_TICKET_EVENTS_", "TARGET_POSTGRES_", "TARGET_JSONL_", "MELTANO_")
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


@dataclass
class TapRun:
    """What one run of the tap printed, parsed."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        lines = self.stdout.split("\n")
        # A line without its newline was cut by a kill (SIGKILL loses what was buffered): what
        # a target would have read, and dropped, of that run.
        self.messages = [json.loads(line) for line in lines[:-1] if line.strip()]

    @property
    def records(self) -> list[dict[str, Any]]:
        """The ticket_events records (most tests look at that stream alone)."""
        return self.records_of("ticket_events")

    def records_of(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    @property
    def ids(self) -> list[Any]:
        return [r["id"] for r in self.records]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def bookmark(self) -> int | None:
        if not self.states:
            return None
        value: int = self.states[-1]["bookmarks"]["ticket_events"]["replication_key_value"]
        return value

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, "a secret leaked into the tap's output"


# ``python -m tap_zendesk_ticket_events``, except that the SDK's dotenv lookup finds no file (see
# pytest_configure): the tap's command line, exit codes and output are the console script's.
_TAP_WITHOUT_DOTENV = """\
import runpy
try:
    import singer_sdk.configuration._dict_config as c
    c.find_dotenv = lambda *args, **kwargs: ""
except ImportError:
    pass
runpy.run_module("tap_zendesk_ticket_events", run_name="__main__", alter_sys=True)
"""


def tap_command() -> list[str]:
    """The tap's command line, as a subprocess: ``python -m tap_zendesk_ticket_events``, blind to
    any ``.env`` of the clone."""
    return [sys.executable, "-c", _TAP_WITHOUT_DOTENV]


def run_tap(
    tmp_path: Path,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    extra_args: tuple[str, ...] = (),
) -> TapRun:
    """Run the installed tap as a user would (a subprocess), and check it leaked nothing."""
    proc = subprocess.run(
        [*tap_command(), *tap_args(tmp_path, config, state, extra_args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert_no_secret(proc.stdout, proc.stderr)
    return TapRun(proc.returncode, proc.stdout, proc.stderr)


def tap_args(
    tmp_path: Path, config: dict[str, Any], state: dict[str, Any] | None, extra_args: tuple[str, ...]
) -> list[str]:
    """The tap's arguments after its command: ``--config`` (and ``--state``) files in ``tmp_path``."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    args = ["--config", str(config_file), *extra_args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        args += ["--state", str(state_file)]
    return args


def run_tap_in_process(
    tmp_path: Path,
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> TapRun:
    """The same command line as ``run_tap``, run by the tap's own click command in this process.

    For tests of what the tap does, not of the process it runs in: it is the console script's
    code path (the SDK's CLI, the tap's ``invoke`` and its one-line errors, the console log on
    stderr, ``sys.exit`` codes) without a Python start-up per run. Tests about the process
    itself (signals, a hang, an uncaught crash, what reaches a terminal) use ``run_tap``.
    """
    done = run_cli_in_process(tap_args(tmp_path, config, state, extra_args), env=env)
    return TapRun(done.returncode, done.stdout, done.stderr)


def run_cli_in_process(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``tap-zendesk-ticket-events <args>`` in this process: what it wrote, and its exit code.

    Everything a run changes in the process is put back afterwards: the environment (``env``
    is added to it for the run), the standard streams, the root logger's handlers and every
    logger's level and filters, warning filters, ``sys.excepthook``, the signal handlers.
    """
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved_env = dict(os.environ)
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_hook = sys.excepthook
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    loggers = [
        logging.getLogger(),
        *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    saved_loggers = [(x, x.level, list(x.handlers), list(x.filters)) for x in loggers]
    returncode: int = 0
    try:
        with warnings.catch_warnings(), open(os.devnull, encoding="utf-8") as stdin:
            os.environ.update(env or {})
            sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
            try:
                # Read the attribute now: like at a process start, it sets up the SDK's console
                # log (a root handler writing to the sys.stderr of the moment).
                command = TapZendeskTicketEvents.cli
                command.main(args=args, prog_name=TapZendeskTicketEvents.name)
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    returncode = exc.code or 0
                else:  # as the interpreter does with sys.exit("message")
                    print(exc.code, file=sys.stderr)
                    returncode = 1
            except Exception:  # an uncaught exception: the interpreter's traceback and exit 1
                traceback.print_exc()
                returncode = 1
            finally:
                logging.captureWarnings(False)  # the SDK's command captures them into the log
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.excepthook = saved_hook
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for logger, level, logger_handlers, filters in saved_loggers:
            logger.setLevel(level)
            logger.handlers[:] = logger_handlers
            logger.filters[:] = filters
        known = {id(logger) for logger, *_ in saved_loggers}
        for made in list(logging.Logger.manager.loggerDict.values()):  # loggers the run created
            if isinstance(made, logging.Logger) and id(made) not in known:
                made.setLevel(logging.NOTSET)
                made.handlers.clear()
                made.filters.clear()
        os.environ.clear()
        os.environ.update(saved_env)
    out = stdout.buffer.getvalue().decode()
    err = stderr.buffer.getvalue().decode()
    assert_no_secret(out, err)
    return subprocess.CompletedProcess(["tap-zendesk-ticket-events", *args], returncode, out, err)


def run_until_signal(
    tmp_path: Path,
    config: dict[str, Any],
    state: dict[str, Any] | None,
    sig: int,
    after_records: int,
    extra_args: tuple[str, ...] = (),
) -> TapRun:
    """Start the tap, send ``sig`` once it has written ``after_records`` records (of any
    stream), and keep everything it wrote (a target would have read the pipe to its end)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    args = [*tap_command(), "--config", str(tmp_path / "config.json"), *extra_args]
    if state is not None:
        (tmp_path / "state.json").write_text(json.dumps(state))
        args += ["--state", str(tmp_path / "state.json")]
    with (tmp_path / "stderr.log").open("w") as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        lines: list[str] = []
        records = 0
        for line in proc.stdout:
            lines.append(line)
            if '"type":"RECORD"' in line:
                records += 1
                if records == after_records:
                    proc.send_signal(sig)
                    break
        lines.extend(proc.stdout.readlines())
        returncode = proc.wait(timeout=60)
    text = "".join(lines)
    assert_no_secret(text, (tmp_path / "stderr.log").read_text())
    return TapRun(returncode, text, (tmp_path / "stderr.log").read_text())


def selecting(tmp_path: Path, config: dict[str, Any], *streams: str) -> tuple[str, ...]:
    """``--catalog`` arguments that select exactly ``streams`` (the tap's own discovery, edited)."""
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(catalog_selecting(config, *streams)))
    return ("--catalog", str(catalog_file))


def catalog_selecting(config: dict[str, Any], *streams: str) -> dict[str, Any]:
    """A catalog (the tap's own discovery, in this process) that selects exactly ``streams``."""
    catalog: dict[str, Any] = TapZendeskTicketEvents(config=config).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
    return catalog


def sync_in_process(
    config: dict[str, Any], state: dict[str, Any] | None = None, catalog: dict[str, Any] | None = None
) -> TapRun:
    """Run the tap in this process (for tests that replace backoff's clock)."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    returncode = 0
    error = ""
    # The tap installs its SIGTERM/SIGINT handlers in this process: give pytest its own back.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.redirect_stdout(out):
            tap = TapZendeskTicketEvents(config=config, state=state, catalog=catalog)
            try:
                tap.sync_all()
            except Exception as exc:
                returncode, error = 1, f"{type(exc).__name__}: {exc}"
            out.flush()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    text = raw.getvalue().decode()
    assert_no_secret(text, error)
    return TapRun(returncode, text, error)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff's sleeps instead of sleeping them (the tap's own code still decides them)."""
    recorded: list[float] = []
    fake_time = types.SimpleNamespace(sleep=recorded.append, monotonic=time.monotonic)
    monkeypatch.setattr(backoff._sync, "time", fake_time)
    return recorded


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator()
    server = SimulatorServer(simulator).start()
    try:
        yield simulator
    finally:
        server.stop()


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
