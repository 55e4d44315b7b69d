"""End to end into strict Singer targets, without Meltano: the tap piped into the target.

PipelineWise-family targets make a column of each top-level property from its declared type
(a type list with "object" or "array" becomes a JSON column) and, with `validate_records`,
check every record against the SCHEMA: a declaration that does not match what the tap sends
fails the load. Two of them are tested here, each installed from PyPI into its own virtualenv
(built by the test, then cached in .venv-targets/):

- pipelinewise-target-postgres 2.1.2, into a fresh schema of the local PostgreSQL
  (127.0.0.1:5432, user postgres; skipped without it, except under CI=true, where it must run);
- target-duckdb 0.8.0, into a DuckDB file.

Each test makes two runs of all four streams (the two exports and the two derived from the
ticket events), as a cron job would: the first over part of the export, then new events, and
a second run from the last STATE the target printed. The destination must hold every id
exactly once. Run them alone with `python3 tasks.py pytest tests/test_strict_targets.py`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_DATABASE, PG_HOST, PG_PORT, PG_USER, make_config, psql, unavailable
from tests.redaction_data import CARD, PASSPORT, PHONE, plant
from tests.runners import assert_no_secret, bookmark_of, selecting, tap_args, tap_command
from tests.test_derived import expected_comments, expected_history
from zendesk_simulator import Simulator, event_second, make_metric_events, make_open_ended_events, metric_epoch

pytestmark = pytest.mark.target  # every test here pipes the tap into a target from PyPI

ROOT = Path(__file__).resolve().parent.parent
# One virtualenv per target and version, in the clone like .venv and .venv-meltano: git-ignored,
# left out of test_meltano.py's copy of the project (".venv*"), gone with the clone, and never
# shared with another clone's test run (a shared ~/.cache would be built by two at once).
TARGET_VENVS = ROOT / ".venv-targets"
READY = "requirements.ok"  # written last: a venv without it (an interrupted build) is rebuilt
EXPORTS = ("ticket_events", "ticket_metric_events")  # the streams with a bookmark
STREAMS = (*EXPORTS, "ticket_field_history", "ticket_comments")


@dataclass(frozen=True)
class Target:
    """A Singer target from PyPI: its command and everything pip installs for it, pinned."""

    command: str
    package: str
    version: str
    requirements: tuple[str, ...]
    """Pins of its dependencies (what `pip install <package>==<version>` resolved on 2026-11-27
    on Python 3.11, where these tests passed, except where noted). A change rebuilds the
    virtualenv."""

    @property
    def venv(self) -> Path:
        return TARGET_VENVS / f"{self.package}-{self.version}"

    def requirement_lines(self) -> list[str]:
        return [f"{self.package}=={self.version}", *self.requirements]


PIPELINEWISE_POSTGRES = Target(
    "target-postgres",
    "pipelinewise-target-postgres",
    "2.1.2",
    # The target pins psycopg2-binary 2.9.5 (wheels up to Python 3.11), and its
    # pipelinewise-singer-python pins jsonschema 3.2.0 and simplejson 3.17.2 (built from its
    # sdist: needs a C compiler and the Python headers). The rest floats; pinned here.
    (
        "attrs==26.1.0",
        "backoff==1.10.0",
        "ciso8601==2.4.1",
        "inflection==0.3.1",
        "joblib==1.2.0",
        "jsonschema==3.2.0",
        "pipelinewise-singer-python==1.3.0",
        "psycopg2-binary==2.9.5",
        "pyrsistent==0.20.0",
        "python-dateutil==4.0.0",
        "pytz==2020.5",
        "simplejson==3.17.2",
        "six==1.17.0",
        "tzdata==2026.6",
    ),
)
TARGET_DUCKDB = Target(
    "target-duckdb",
    "target-duckdb",
    "0.8.0",
    # It asks for duckdb>=1.0.0, which today resolves to 2.0.1. But from duckdb 1.3.0 on, its
    # `COPY <temp table> FROM '<batch>.csv'` (no header option) drops the first row of some
    # batches, taken for a CSV header: events silently lost (this test fails on 1.3.0, 1.3.2,
    # 1.4.4 and 2.0.1). duckdb 1.2.2, the last release before 1.3, loads every row.
    (
        "attrs==26.1.0",
        "duckdb==1.2.2",
        "jsonschema==4.26.0",
        "jsonschema-specifications==2025.9.1",
        "referencing==0.37.0",
        "rpds-py==2026.9.1",
        "typing-extensions==4.16.0",
    ),
)


def target_python() -> str:
    """A Python of 3.11 or older for the targets' virtualenvs: their pins have no wheels for newer.

    This one when it is old enough, else a python3.11 or python3.10 on the PATH (the CI workflow
    sets one up beside the Python under test).
    """
    if sys.version_info < (3, 12):
        return sys.executable
    for name in ("python3.11", "python3.10"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("the strict targets need a Python of 3.11 or older (python3.11 on the PATH)")
    raise AssertionError  # unavailable() skips or fails


def cache_key(target: Target) -> str:
    """What the virtualenv was built from: the requirement list and the Python that ran it."""
    version = subprocess.run([target_python(), "--version"], capture_output=True, text=True, check=True).stdout
    text = "\n".join([version.strip(), target_python(), *target.requirement_lines()])
    return hashlib.sha256(text.encode()).hexdigest()


def target_venv(target: Target) -> Path:
    """The target's virtualenv, built on first use and kept while its requirements are unchanged."""
    TARGET_VENVS.mkdir(exist_ok=True)
    key = cache_key(target)
    with (TARGET_VENVS / f"{target.venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run of this clone may be building it
        ready = target.venv / READY
        if ready.exists() and ready.read_text() == key:
            return target.venv
        shutil.rmtree(target.venv, ignore_errors=True)
        subprocess.run([target_python(), "-m", "venv", str(target.venv)], check=True, capture_output=True)
        requirements = target.venv / "requirements.txt"
        requirements.write_text("\n".join(target.requirement_lines()) + "\n")
        args = [str(target.venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        pip = subprocess.run(
            [*args, "--quiet", "-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert pip.returncode == 0, f"pip could not install {target.package}=={target.version}:\n{pip.stderr[-3000:]}"
        ready.write_text(key)
    return target.venv


@dataclass
class Pipe:
    """One run of `tap | target`: the STATE lines the target printed, and both logs."""

    states: list[dict[str, Any]]
    tap_log: str
    target_log: str


def pipe(tmp_path: Path, name: str, target: Target, target_config: dict[str, Any], args: list[str]) -> Pipe:
    """Run the tap with its stdout piped into the target, as `tap ... | target ...` in a shell."""
    command = target_venv(target) / "bin" / target.command
    target_config_file = tmp_path / f"{name}-target-config.json"
    target_config_file.write_text(json.dumps(target_config))
    tap_log = tmp_path / f"{name}-tap.log"
    with tap_log.open("w") as tap_stderr:
        tap = subprocess.Popen(
            [*tap_command(), *args], stdout=subprocess.PIPE, stderr=tap_stderr, stdin=subprocess.DEVNULL
        )
        assert tap.stdout is not None
        try:
            loaded = subprocess.run(
                [str(command), "--config", str(target_config_file)],
                stdin=tap.stdout,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        finally:
            tap.stdout.close()  # the target is gone: the tap must not wait on a full pipe
            try:
                tap.wait(timeout=60)
            finally:
                tap.kill()
    run = Pipe(
        [json.loads(line) for line in loaded.stdout.splitlines() if line.strip()],
        tap_log.read_text(),
        loaded.stderr,
    )
    assert_no_secret(run.tap_log, run.target_log, loaded.stdout)
    # The target first: when it fails, the tap then dies on the closed pipe.
    assert loaded.returncode == 0, f"{target.command} exited {loaded.returncode}:\n{short(run.target_log)}"
    assert tap.returncode == 0, f"the tap exited {tap.returncode}:\n{short(run.tap_log)}"
    assert run.states, f"{target.command} printed no STATE"
    return run


def short(log: str) -> str:
    """The end of a target's log, each line cut short (a failed record is printed whole)."""
    return "\n".join(line[:400] for line in log.splitlines()[-20:])


@dataclass
class Export:
    """A varied export in two parts: the second arrives between the two runs."""

    sim: Simulator
    tmp_path: Path
    events: list[dict[str, Any]]
    metric_events: list[dict[str, Any]]

    def tap_args(self, name: str, state: dict[str, Any] | None) -> list[str]:
        config = make_config(self.sim, include_comment_events=True, page_size=200)
        return tap_args(self.tmp_path, config, state, selecting(self.tmp_path, config, *STREAMS), name=f"{name}-tap")

    def add_second_part(self, state: dict[str, Any]) -> None:
        """New events, the first of each stream in its bookmark's own second, which the second
        run reads again: the target must upsert the re-read ones, not add them twice."""
        bookmark = bookmark_of(state, "ticket_events")
        events = make_open_ended_events(
            600, start=bookmark, first_id=max(e["id"] for e in self.events) + 11, seed=62, bursts={bookmark + 90: 250}
        )
        metric_bookmark = bookmark_of(state, "ticket_metric_events")
        metric_events = make_metric_events(
            150, start=metric_bookmark, first_id=max(e["id"] for e in self.metric_events) + 1, seed=63
        )
        self.events += events
        self.metric_events += metric_events
        self.sim.add_events(events)
        self.sim.set_metric_events(self.metric_events)

    def ids(self, stream: str) -> list[Any]:
        """The primary keys the destination must hold, each once."""
        if stream == "ticket_events":
            return [e["id"] for e in self.events]
        if stream == "ticket_metric_events":
            return [e["id"] for e in self.metric_events]
        if stream == "ticket_field_history":
            return list(expected_history(self.events))
        return list(expected_comments(self.events))

    def last_second(self, stream: str) -> int:
        if stream == "ticket_events":
            return max(event_second(e) for e in self.events)
        return max(metric_epoch(e) for e in self.metric_events)


@pytest.fixture
def export(sim: Simulator, tmp_path: Path) -> Export:
    """1,500 ticket events in every recorded shape, undocumented and malformed child events
    mixed in (make_open_ended_events), with a 450-event second (more than a
    200-event page), comments whose `via` is an object, 5% of the events with an object `via`
    too; and metric events."""
    events = make_open_ended_events(1500, start=1_700_000_000, seed=61, bursts={1_700_000_700: 450})
    metric_events = make_metric_events(400, start=1_700_000_000, seed=64)
    sim.set_events(events)
    sim.set_metric_events(metric_events)
    assert any(isinstance(e.get("via"), dict) for e in events)
    return Export(sim, tmp_path, list(events), list(metric_events))


def two_runs(export: Export, target: Target, target_config: dict[str, Any], check: Callable[[], None]) -> list[Pipe]:
    """First run, check; second part of the export; second run from the target's last STATE, check."""
    first = pipe(export.tmp_path, "first", target, target_config, export.tap_args("first", None))
    check()
    state = first.states[-1]
    for stream in EXPORTS:
        assert bookmark_of(state, stream) == export.last_second(stream), f"{stream}: the target's last STATE"

    export.add_second_part(state)
    seen = {stream: len(export.sim.export_requests(stream)) for stream in EXPORTS}
    second = pipe(export.tmp_path, "second", target, target_config, export.tap_args("second", state))
    for stream in EXPORTS:
        resumed = export.sim.export_requests(stream)[seen[stream] :]
        assert resumed, f"{stream}: the second run sent no request"
        assert resumed[0].params["start_time"] == str(bookmark_of(state, stream)), f"{stream}: not resumed"
        assert bookmark_of(second.states[-1], stream) == export.last_second(stream)
    check()
    return [first, second]


def assert_exactly_once(stream: str, loaded_ids: list[str], export: Export) -> None:
    """Ids compared as text: the field history's are strings, the others integers."""
    expected = [str(i) for i in export.ids(stream)]
    assert expected, f"{stream}: the export makes no row of this stream"
    assert sorted(set(loaded_ids)) == sorted(expected), f"{stream}: ids missing or unexpected"
    assert len(loaded_ids) == len(expected), f"{stream}: an id has more than one row"


def object_via_event(export: Export) -> dict[str, Any]:
    return next(e for e in export.events if isinstance(e.get("via"), dict))


# --- pipelinewise-target-postgres ------------------------------------------------------------


@pytest.mark.postgres
def test_pipelinewise_target_postgres_loads_every_stream_then_resumes_from_its_state(
    export: Export, pg_schema: str
) -> None:
    config = {
        "host": PG_HOST,
        "port": int(PG_PORT),
        "user": PG_USER,
        # The target insists on a password; the local server trusts loopback and ignores it.
        "password": os.environ.get("PGPASSWORD", "postgres"),
        "dbname": PG_DATABASE,
        "default_target_schema": pg_schema,
        "validate_records": True,
        "primary_key_required": True,
        "batch_size_rows": 500,  # several flushes and STATE lines per run
    }

    def check() -> None:
        for stream in STREAMS:
            ids = psql(f'select id from "{pg_schema}".{stream}').splitlines()
            assert_exactly_once(stream, ids, export)

    runs = two_runs(export, PIPELINEWISE_POSTGRES, config, check)
    # The re-read boundary second was upserted, not inserted again.
    assert updated_rows(runs[0].target_log, "ticket_events") == 0
    assert updated_rows(runs[1].target_log, "ticket_events") > 0

    where = f"table_schema = '{pg_schema}' and table_name = 'ticket_events'"
    columns = psql(f"select column_name, data_type from information_schema.columns where {where}")
    types = dict(line.split("|") for line in columns.splitlines())
    assert types["via"] == "character varying"
    assert types["system"] == types["child_events"] == "jsonb"
    sample = object_via_event(export)
    via, children = psql(f'select via, child_events from "{pg_schema}".ticket_events where id = {sample["id"]}').split(
        "|"
    )
    assert json.loads(via) == sample["via"]  # the object as JSON text
    assert [c["id"] for c in json.loads(children)] == [c["id"] for c in sample["child_events"]]
    comment_vias = psql(
        f'select count(*) from "{pg_schema}".ticket_events, jsonb_array_elements(child_events) c '
        "where c ? 'body' and jsonb_typeof(c -> 'via') = 'object'"
    )
    assert int(comment_vias) > 0, "no full comment (with its object via) landed"


def updated_rows(log: str, stream: str) -> int:
    """Rows updated in place, from pipelinewise-target-postgres's `Loading into <table>: {"inserts":
    …, "updates": …}` lines."""
    loads = [line for line in log.splitlines() if "Loading into" in line and f'"{stream}"' in line]
    assert loads, f"no load of {stream} in the target's log"
    return sum(json.loads(line[line.index("{") :])["updates"] for line in loads)


# --- target-duckdb -----------------------------------------------------------------------------


def duckdb_rows(database: Path, sql: str) -> list[list[Any]]:
    """Rows of a query, read with the duckdb module of the target's own virtualenv."""
    script = (
        "import duckdb, json, sys\n"
        "with duckdb.connect(sys.argv[1], read_only=True) as db:\n"
        "    print(json.dumps(db.execute(sys.argv[2]).fetchall(), default=str))\n"
    )
    proc = subprocess.run(
        [str(target_venv(TARGET_DUCKDB) / "bin" / "python"), "-c", script, str(database), sql],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows: list[list[Any]] = json.loads(proc.stdout)
    return rows


def test_target_duckdb_loads_every_stream_then_resumes_from_its_state(export: Export, tmp_path: Path) -> None:
    duckdb_file = tmp_path / "warehouse.duckdb"
    config = {
        "path": str(duckdb_file),
        "default_target_schema": "zendesk",
        "validate_records": True,
        "primary_key_required": True,
        "batch_size_rows": 500,
    }

    def check() -> None:
        for stream in STREAMS:
            ids = [str(row[0]) for row in duckdb_rows(duckdb_file, f"select id from zendesk.{stream}")]
            assert_exactly_once(stream, ids, export)

    two_runs(export, TARGET_DUCKDB, config, check)

    types = dict(
        duckdb_rows(
            duckdb_file,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'zendesk' and table_name = 'ticket_events'",
        )
    )
    assert types["via"] == "VARCHAR"
    assert types["system"] == types["child_events"] == "JSON"
    sample = object_via_event(export)
    [[via, children]] = duckdb_rows(
        duckdb_file, f"select via, child_events from zendesk.ticket_events where id = {sample['id']}"
    )
    assert json.loads(via) == sample["via"]
    assert [c["id"] for c in json.loads(children)] == [c["id"] for c in sample["child_events"]]
    [[comment_vias]] = duckdb_rows(
        duckdb_file,
        "select count(*) from zendesk.ticket_events, unnest(cast(child_events as json[])) as c(child) "
        "where json_exists(child, '$.body') and json_type(child, '$.via') = 'OBJECT'",
    )
    assert comment_vias > 0, "no full comment (with its object via) landed"


def test_target_duckdb_after_redactions_holds_no_erased_content(sim: Simulator, tmp_path: Path) -> None:
    """Two runs into DuckDB, Zendesk erasing card numbers and passport scans in between: no table
    of the destination holds them afterwards (every row, every column, searched as text)."""
    events = make_open_ended_events(800, start=1_700_000_000, seed=66)
    planted = plant(events)
    sim.set_events(events)
    duckdb_file = tmp_path / "warehouse.duckdb"
    target_config = {
        "path": str(duckdb_file),
        "default_target_schema": "zendesk",
        "validate_records": True,
        "primary_key_required": True,
    }
    config = make_config(sim, include_comment_events=True, page_size=200)
    (tmp_path / "tap-config.json").write_text(json.dumps(config))
    streams = ("ticket_events", "ticket_comments", "ticket_redactions")
    args = ["--config", str(tmp_path / "tap-config.json"), *selecting(tmp_path, config, *streams)]

    def holding(text: str) -> dict[str, int]:
        tables = duckdb_rows(
            duckdb_file, "select table_name from information_schema.tables where table_schema = 'zendesk'"
        )
        return {
            table: duckdb_rows(
                duckdb_file, f"select count(*) from zendesk.{table} as r where cast(r as varchar) like '%{text}%'"
            )[0][0]
            for (table,) in tables
        }

    first = pipe(tmp_path, "first", TARGET_DUCKDB, target_config, args)
    assert holding(CARD)["ticket_comments"] == len(planted.comment_ids)
    assert holding(CARD)["ticket_events"] == len(planted.comment_ids)
    state = first.states[-1]
    bookmark = bookmark_of(state, "ticket_events")
    for n, comment_id in enumerate(planted.comment_ids):
        sim.redact_comment(comment_id, CARD, at=bookmark + 100 + n)
    for n, attachment_id in enumerate(planted.attachments):
        sim.redact_attachment(attachment_id, at=bookmark + 200 + n)
    (tmp_path / "state.json").write_text(json.dumps(state))
    pipe(tmp_path, "second", TARGET_DUCKDB, target_config, [*args, "--state", str(tmp_path / "state.json")])

    for text in (CARD, PASSPORT):
        assert set(holding(text).values()) == {0}, f"{text!r} is still in the destination"
    assert holding(PHONE)["ticket_comments"] == len(planted.comment_ids)  # the rest of the text stays
    [[rows, rewritten]] = duckdb_rows(
        duckdb_file, "select count(*), count(*) filter (where rewritten) from zendesk.ticket_redactions"
    )
    assert rows == rewritten == len(planted.comment_ids) + len(planted.attachments)
