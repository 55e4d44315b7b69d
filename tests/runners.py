"""The ways the tests run the tap, and what a run printed, parsed: one module, three runners.

- ``sync_in_process``: the tap object's ``sync_all`` in this process, no command line. For
  tests that look at the tap object itself or replace a clock in its modules.
- ``run_tap_in_process``: the console script's command line (the SDK's CLI, the tap's
  ``invoke`` and its one-line errors, the console log, exit codes) in this process. The
  default: what a user runs, without a Python start-up per run.
- ``run_tap`` (and ``start_tap``, for runs that overlap): the tap as a subprocess, for tests
  of the process itself: a signal after so many messages, a target that stops reading, a
  hang, another HOME or working directory, what an environment without ``.env`` gives.

Every runner checks that no secret reached the output (``assert_no_secret``). Each writes
``--config``/``--state`` files with ``tap_args``; ``selecting`` adds a ``--catalog``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import shutil
import signal as signals
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

if sys.version_info >= (3, 12):
    from typing import override
else:  # typing_extensions before 3.12
    from typing_extensions import override

from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from zendesk_simulator import ACCESS_TOKEN, API_TOKEN, OAUTH_TOKEN_PATH, Request, Simulator

SECRETS = (API_TOKEN, ACCESS_TOKEN)
# Variables that configure the tap, the targets or Meltano: a developer's shell may hold them
# (from a real account), and no test may see them. Tests that want one set it themselves.
SETTINGS_PREFIXES = ("TAP_ZENDESK_TICKET_EVENTS_", "TARGET_POSTGRES_", "TARGET_JSONL_", "MELTANO_")


@dataclass
class TapRun:
    """What one run of the tap printed, parsed."""

    returncode: int
    stdout: str
    stderr: str

    @functools.cached_property
    def messages(self) -> list[dict[str, Any]]:
        """The Singer messages on stdout (parsed when first asked: ``--about`` writes none)."""
        lines = self.stdout.split("\n")
        # A line without its newline was cut by a kill (SIGKILL loses what was buffered): what
        # a target would have read, and dropped, of that run.
        return [json.loads(line) for line in lines[:-1] if line.strip()]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

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
        return bookmark_of(self.states[-1]) if self.states else None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]

    def one_error_line(self) -> str:
        """The run's one ERROR (or CRITICAL) line, of a run that printed no traceback."""
        assert len(self.error_lines) == 1, self.stderr
        assert "Traceback" not in self.stderr
        return self.error_lines[0]


@dataclass
class SyncRun(TapRun):
    """A ``sync_in_process`` run: also the tap object, what its sync raised, its stdout's flushes."""

    tap: TapZendeskTicketEvents = field(kw_only=True)
    error: BaseException | None = field(default=None, kw_only=True)
    flushes: int = field(default=0, kw_only=True)


def bookmark_of(state: Mapping[str, Any], stream: str = "ticket_events") -> int:
    """The bookmark (epoch seconds) a Singer state holds for ``stream``."""
    value: int = state["bookmarks"][stream]["replication_key_value"]
    return value


# --- secrets --------------------------------------------------------------------------------


def oauth_secrets(sim: Simulator) -> list[str]:
    """Every OAuth secret of the simulator: the client secret, every token it ever issued."""
    return [sim.oauth.client_secret, *sim.oauth.issued]


def token_requests(sim: Simulator) -> list[Request]:
    """The requests to the simulator's OAuth token endpoint (each a refresh, or a refused one)."""
    return [r for r in sim.requests if r.path == OAUTH_TOKEN_PATH]


def assert_no_secret(*texts: str, also: Iterable[str] = ()) -> None:
    """No API or access token (nor any of ``also``) in any of ``texts``."""
    secrets = [*SECRETS, *also]
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret leaked into the tap's output"


def assert_no_oauth_secret(sim: Simulator, root: Path, *runs: TapRun, store_name: str = "oauth-token.json") -> None:
    """No secret in any run's output or STATE, or in any file below ``root`` except the token
    store (``store_name``), the configs (they hold what the user put there) and the runs'
    outputs (checked as the runs)."""
    secrets = [*SECRETS, *oauth_secrets(sim)]
    for run in runs:
        states = json.dumps(run.states)
        for secret in secrets:
            assert secret not in run.stdout, "a secret leaked into stdout"
            assert secret not in run.stderr, "a secret leaked into the logs"
            assert secret not in states, "a secret leaked into STATE"
    for path in root.rglob("*"):
        if path.is_dir() or path.name.endswith(("config.json", ".out", ".err")) or path.name == store_name:
            continue
        content = path.read_bytes().decode(errors="replace")
        assert not any(secret in content for secret in secrets), f"a secret was written to {path.name}"


# --- the command line's arguments -----------------------------------------------------------


def run_command(
    args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A command as a user would run it (Meltano, a documented shell block, pytest): no stdin,
    its output captured as text, its exit code left for the caller to judge."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def tap_command() -> list[str]:
    """The tap's command line, as a subprocess: ``python -m tap_zendesk_ticket_events``, blind to
    any ``.env`` of the clone (see ``hide_dotenv_from_the_sdk``)."""
    return [sys.executable, "-c", _TAP_WITHOUT_DOTENV]


# ``python -m tap_zendesk_ticket_events``, except that the SDK's dotenv lookup finds no file (see
# conftest's pytest_configure): the tap's command line, exit codes and output are the console script's.
_TAP_WITHOUT_DOTENV = """\
import runpy
try:
    import singer_sdk.configuration._dict_config as c
    c.find_dotenv = lambda *args, **kwargs: ""
except ImportError:
    pass
runpy.run_module("tap_zendesk_ticket_events", run_name="__main__", alter_sys=True)
"""


def tap_args(
    where: Path | None,
    config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    extra_args: Iterable[str] = (),
    *,
    name: str | None = None,
) -> list[str]:
    """The tap's arguments after its command: ``--config`` (and ``--state``) files written in
    ``where`` (``config.json``, or ``<name>-config.json``), then ``extra_args``."""
    args: list[str] = []
    for option, content in (("--config", config), ("--state", state)):
        if content is not None:
            assert where is not None, f"{option} needs a folder for its file"
            path = where / (f"{name}-{option[2:]}.json" if name else f"{option[2:]}.json")
            path.write_text(json.dumps(content))
            args += [option, str(path)]
    return [*args, *extra_args]


def catalog_selecting(config: Mapping[str, Any], *streams: str) -> dict[str, Any]:
    """A catalog (the tap's own discovery, in this process) that selects exactly ``streams``."""
    catalog: dict[str, Any] = TapZendeskTicketEvents(config=dict(config)).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
    return catalog


def selecting(tmp_path: Path, config: Mapping[str, Any], *streams: str) -> tuple[str, ...]:
    """``--catalog`` arguments that select exactly ``streams`` (the tap's own discovery, edited)."""
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(catalog_selecting(config, *streams)))
    return ("--catalog", str(catalog_file))


def hermetic_env(**extra: str) -> dict[str, str]:
    """This process's environment without any setting of the tap, a target or Meltano, plus ``extra``.

    (conftest takes the shell's out of this process at start; this keeps a test that puts
    some back, like test_hermetic.py, from passing them on.)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env.update(extra)
    return env


# --- in this process ------------------------------------------------------------------------


class _CountingBuffer(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    @override
    def flush(self) -> None:
        self.flushes += 1
        super().flush()


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """The tap installs its SIGTERM/SIGINT handlers in this process: give pytest its own back."""
    handlers = {sig: signals.getsignal(sig) for sig in (signals.SIGINT, signals.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signals.signal(sig, handler)


@contextlib.contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    """``cwd`` as the working directory for the block (contextlib.chdir is 3.11+)."""
    before = Path.cwd()
    os.chdir(cwd or before)
    try:
        yield
    finally:
        os.chdir(before)


def sync_in_process(
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    *,
    before: Callable[[TapZendeskTicketEvents], None] | None = None,
) -> SyncRun:
    """``sync_all`` of a tap object in this process: its stdout counted (flushes) and parsed.

    ``before`` is given the tap between its making and its sync. An exception the sync raises
    becomes exit 1, ``error`` and one ``stderr`` line (the log goes to the logging of this
    process, where ``caplog`` sees it).
    """
    buffer = _CountingBuffer()
    out = io.TextIOWrapper(buffer, encoding="utf-8")
    error: BaseException | None = None
    with _signal_handlers_kept():
        tap = TapZendeskTicketEvents(
            config=dict(config),
            state=None if state is None else dict(state),
            catalog=None if catalog is None else dict(catalog),
        )
        if before is not None:
            before(tap)
        with contextlib.redirect_stdout(out):
            try:
                tap.sync_all()
            except Exception as exc:  # the test looks at it
                error = exc
            out.flush()
    text = buffer.getvalue().decode()
    stderr = "" if error is None else f"{type(error).__name__}: {error}"
    assert_no_secret(text, stderr)
    return SyncRun(int(error is not None), text, stderr, tap=tap, error=error, flushes=buffer.flushes)


def run_tap_in_process(
    where: Path | None,
    config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    extra_args: Iterable[str] = (),
    cwd: Path | None = None,
) -> TapRun:
    """``tap-zendesk-ticket-events --config … [--state …] <extra_args>`` run by the tap's own click
    command in this process (in ``cwd``): the console script's code path without a Python start-up.

    Everything a run changes in the process is put back afterwards: the environment (``env``
    is added to it for the run), the working directory, the standard streams, the root
    logger's handlers and every logger's level and filters, warning filters,
    ``sys.excepthook``, the signal handlers.
    """
    args = tap_args(where, config, state, extra_args)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved_env = dict(os.environ)
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_hook = sys.excepthook
    loggers = [
        logging.getLogger(),
        *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    saved_loggers = [(x, x.level, list(x.handlers), list(x.filters)) for x in loggers]
    returncode: int = 0
    try:
        with (
            _signal_handlers_kept(),
            warnings.catch_warnings(),
            _working_directory(cwd),
            open(os.devnull, encoding="utf-8") as stdin,
        ):
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
    return TapRun(returncode, out, err)


def tap_output(*args: str) -> str:
    """What ``tap-zendesk-ticket-events <args>`` writes to stdout (``--about``, ``--discover``,
    ``--version``), run in this process; it must exit 0."""
    run = run_tap_in_process(None, extra_args=args)
    assert run.returncode == 0, run.stderr
    return run.stdout


# --- as a subprocess ------------------------------------------------------------------------


@dataclass
class StartedTap:
    """A tap subprocess: its stdout and stderr go to files in its folder (they outlive a kill)."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    reader: threading.Thread
    scratch: Path | None = None
    """A folder of the runner's own, removed at the end (a run given no folder)."""
    oauth: Simulator | None = None
    """The simulator whose OAuth secrets (every token it issued) the run is checked for."""

    def finish(self, timeout: float = 120) -> TapRun:
        """Wait for the exit; what it wrote, parsed, checked for the API and access tokens."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.reader.join(timeout=60)
        run = TapRun(self.proc.returncode, self.out.read_text(), self.err.read_text())
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        assert_no_secret(run.stdout, run.stderr)
        if self.oauth is not None:
            assert_no_oauth_secret(self.oauth, self.out.parent, run)
        return run


def _read(
    proc: subprocess.Popen[bytes],
    sink: IO[bytes],
    signal: int | None,
    after: int,
    counting: str,
    close_after: int | None,
) -> None:
    """Copy the tap's stdout into ``sink``; send ``signal`` once ``after`` messages of type
    ``counting`` went by, or stop reading (close the pipe, as a dying target does) after
    ``close_after`` lines."""
    assert proc.stdout is not None
    marker = f'"type":"{counting}"'.encode()
    seen = 0
    for lines, line in enumerate(proc.stdout, 1):
        sink.write(line)
        if signal is not None and marker in line:
            seen += 1
            if seen == after:
                proc.send_signal(signal)
        if close_after is not None and lines == close_after:
            break
    proc.stdout.close()
    sink.close()


def start_tap(
    where: Path | None,
    config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    *,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    bare_env: bool = False,
    home: Path | None = None,
    cwd: Path | None = None,
    name: str | None = None,
    signal: int | None = None,
    after: int = 1,
    counting: str = "RECORD",
    close_after: int | None = None,
    oauth: Simulator | None = None,
) -> StartedTap:
    """Start the tap as a user would, a subprocess; ``finish()`` waits for it.

    Files go to ``where`` (a folder of its own when None): ``config.json``, ``state.json``,
    ``tap.out`` and ``tap.err``, or ``<name>-config.json`` … ``<name>.out`` with a ``name``.
    The environment is this process's without any setting (``hermetic_env``) plus ``env``;
    with ``bare_env``, only ``PATH`` plus ``env``; with ``home``, HOME is that folder and no
    ``XDG_`` variable is passed. ``signal`` is sent once, after ``after`` messages of type
    ``counting``; ``close_after`` lines, the tap's stdout is closed (a target that died).
    With ``oauth``, the run and every file in ``where`` are checked for its OAuth secrets.
    """
    scratch = Path(tempfile.mkdtemp(prefix="tap-run-")) if where is None else None
    folder = where if where is not None else scratch
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    args = [*tap_command(), *tap_args(folder, config, state, extra_args, name=name)]
    environ = {"PATH": os.environ.get("PATH", "")} if bare_env else hermetic_env()
    if home is not None:
        environ = {k: v for k, v in environ.items() if not k.startswith("XDG_")}
        environ["HOME"] = str(home)
    environ.update(env or {})
    out, err = folder / f"{name or 'tap'}.out", folder / f"{name or 'tap'}.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, cwd=cwd, env=environ
        )
    reader = threading.Thread(
        target=_read, args=(proc, out.open("wb"), signal, after, counting, close_after), daemon=True
    )
    reader.start()
    return StartedTap(proc, out, err, reader, scratch, oauth)


def run_tap(
    where: Path | None,
    config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    *,
    timeout: float = 120,
    **options: Any,
) -> TapRun:
    """The tap as a subprocess, to its end (``start_tap``'s options: a signal, a closed stdout, …)."""
    return start_tap(where, config, state, **options).finish(timeout)
