"""Meltano on machines that do not keep their disk: the README's configuration, run as written.

Two "machines" are two fresh copies of the project, each with its own HOME and nothing shared
on disk (each runs its own `meltano install`, as the README's CronJob does at container start).
They share only what the README says must persist, in one fresh PostgreSQL database: Meltano's
system database (the state) and, with OAuth refresh, the token store. Machine A runs, then B,
then A again (A kept its disk, so a local state or token file, were there one, would show up as
a wrong resume or an `invalid_grant`). Each run must resume from the bookmark the previous run
saved on the other machine and load every event once; with OAuth client credentials (the
README's first configuration) each asks for its own token and writes none anywhere, with OAuth
refresh each refreshes with the newest refresh token.
Needs the local PostgreSQL and `psql`; skipped without them, except under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import PG_HOST, PG_PORT, PG_USER, START_DATE, psql, unavailable
from tests.docs import marked_block as readme_block
from tests.docs import section as docs_section
from tests.runners import assert_no_secret, bookmark_of, oauth_secrets, token_requests
from tests.test_meltano import (
    MELTANO,
    NOT_COPIED,
    ROOT,
    assert_one_row_per_event,
    meltano,
    meltano_env,
    summary,
)
from tests.test_meltano import epoch as iso_epoch
from zendesk_simulator import Simulator, SimulatorServer, event_second, make_recorded_events

STATE_ID = "prod:tap-zendesk-ticket-events-to-target-postgres"
#: The README's placeholder database, host and role in its URLs.
README_DB = "meltano@db.internal:5432/meltano"
#: PGPASSWORD: trust auth ignores it; nothing may print it.
PASSWORD = "pg-pass-ephemeral-do-not-print-4b7d"


def readme_env(auth: str = "client_credentials") -> dict[str, str]:
    """The README's variables for machines that keep no disk, as ``NAME=value`` lines: its
    client-credentials block, with its OAuth refresh lines added for ``auth="refresh"``."""
    blocks = ["ephemeral-env", *(["ephemeral-env-refresh"] if auth == "refresh" else [])]
    lines = [line for block in blocks for line in readme_block(block).splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and line[0] != "#"]
    return {name: value for name, value in pairs}


def readme_command() -> str:
    """The command of the README's CronJob (what each machine runs)."""
    cronjob = yaml.safe_load(readme_block("ephemeral-cronjob"))
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["bash", "-ec"]
    (script,) = container["args"]
    assert isinstance(script, str)
    return script


def machine_env(sim: Simulator, schema: str, database: str, auth: str) -> dict[str, str]:
    """The README's variables with the local server, the simulator and its OAuth client."""
    documented = readme_env(auth)
    local_db = f"{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
    urls: dict[str, str] = {}
    for name in [n for n in ("MELTANO_DATABASE_URI", "TAP_ZENDESK_TICKET_EVENTS_OAUTH_TOKEN_STORE") if n in documented]:
        scheme, _, rest = documented[name].partition("://")
        assert rest == README_DB, f"{name}: the README's URL changed, update this test"
        urls[name] = f"{scheme}://{local_db}"
    assert documented["MELTANO_DATABASE_URI"].startswith("postgresql+psycopg://")
    base = meltano_env(sim.url, schema)  # the local target-postgres, the simulator's api_url
    local = {
        **urls,
        "MELTANO_ENVIRONMENT": documented["MELTANO_ENVIRONMENT"],
        "PGPASSWORD": PASSWORD,
        # api_url (from meltano_env) stands for the subdomain
        "TAP_ZENDESK_TICKET_EVENTS_SUBDOMAIN": None,
        **({"TAP_ZENDESK_TICKET_EVENTS_REFRESH_TOKEN": sim.oauth.issue_tokens()[1]} if auth == "refresh" else {}),
        "TAP_ZENDESK_TICKET_EVENTS_CLIENT_ID": sim.oauth.client_id,
        "TAP_ZENDESK_TICKET_EVENTS_CLIENT_SECRET": sim.oauth.client_secret,
        "TAP_ZENDESK_TICKET_EVENTS_START_DATE": START_DATE,
        **{name: base[name] for name in documented if name.startswith("TARGET_POSTGRES_")},
    }
    assert set(local) == set(documented), "the README's variables changed: update this test"
    env = {k: v for k, v in base.items() if not k.startswith(("TAP_ZENDESK_TICKET_EVENTS_EMAIL", "XDG_"))}
    del env["TAP_ZENDESK_TICKET_EVENTS_API_TOKEN"]  # OAuth only
    env.update({k: v for k, v in local.items() if v is not None})
    env["PATH"] = os.pathsep.join([str(MELTANO.parent), env.get("PATH", "")])  # meltano, as in the image
    return env


@pytest.fixture
def meltano_database(pg_schema: str) -> Iterator[str]:
    """A fresh database for Meltano's system tables and the token store; dropped at the end.

    (After pg_schema, which skips, or fails under CI=true, when the server is unreachable.)"""
    name = f"meltano_ephemeral_{uuid.uuid4().hex[:12]}"
    psql(f'create database "{name}"')
    try:
        yield name
    finally:
        psql(f'drop database if exists "{name}" with (force)')


class Machine:
    """A project directory and a HOME of its own: no file in common with another machine."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.project = root / "project"
        home = root / "home"
        home.mkdir(parents=True)
        shutil.copytree(ROOT, self.project, ignore=NOT_COPIED)
        self.copied = {path for path in self.project.rglob("*") if path.is_file()}  # the repository's own files
        self.env = {**env, "HOME": str(home)}

    def run(self, sim: Simulator) -> str:
        """The README's CronJob command, as the container runs it; its log (checked for secrets)."""
        proc = subprocess.run(
            ["bash", "-ec", readme_command()],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert_no_secret(proc.stdout, proc.stderr, also=[PASSWORD, *oauth_secrets(sim)])
        assert proc.returncode == 0, f"the CronJob's command exited {proc.returncode}:\n{summary(proc.stderr)}"
        return proc.stderr

    def bookmark(self) -> int:
        """The bookmark in the shared system database, as `meltano state get` reads it here."""
        state = json.loads(meltano(self.project, self.env, "--log-level=warning", "state", "get", STATE_ID))
        assert state, f"{self.project.parent.name} finds no state {STATE_ID} in the system database"
        return bookmark_of(state["singer_state"])


def assert_no_token_on_disk(sim: Simulator, machine: Machine, auth: str) -> None:
    """No file the runs wrote holds a token the runs got: the store is the database alone, or none.

    (Plugin virtualenvs and uv's download cache are left out: installed packages, no output.)
    """
    refreshed = sim.oauth.issued[2:] if auth == "refresh" else sim.oauth.issued  # not the configured grant
    assert refreshed, "no token was issued to the runs"
    for folder, dirs, files in os.walk(machine.project.parent):
        dirs[:] = [d for d in dirs if d not in ("venv", "uv")]
        for path in (Path(folder) / name for name in files):
            if path in machine.copied:
                continue
            content = path.read_bytes().decode(errors="replace")
            assert not any(token in content for token in refreshed), f"a token was written to {path.name}"
            assert PASSWORD not in content, f"the database password was written to {path.name}"


def newest_refresh_generation(sim: Simulator) -> int:
    with sim.oauth.lock:
        return max(sim.oauth.refresh_tokens.values())


@pytest.mark.postgres
@pytest.mark.parametrize("auth", ["client_credentials", "refresh"])
def test_runs_alternate_between_two_machines_sharing_only_postgresql(
    tmp_path: Path, pg_schema: str, meltano_database: str, auth: str
) -> None:
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    sim = Simulator()
    server = SimulatorServer(sim).start()
    try:
        env = machine_env(sim, pg_schema, meltano_database, auth)
        a, b = Machine(tmp_path / "a", env), Machine(tmp_path / "b", env)
        batches = [make_recorded_events(600, start=1_700_000_000, seed=61)]
        sim.set_events(batches[0])
        previous = iso_epoch(START_DATE)  # the first run starts at start_date
        for n, machine in enumerate([a, b, a]):
            if n:
                # New events, the first in the bookmark's own second (read again, upserted).
                last = batches[-1]
                batches.append(
                    make_recorded_events(300, start=previous, first_id=max(e["id"] for e in last) + 11, seed=61 + n)
                )
                sim.add_events(batches[-1])
            sim.oauth.expire_access_tokens()  # the last run's access token is dead: this run refreshes
            newest = newest_refresh_generation(sim) if auth == "refresh" else 0
            exports, tokens = len(sim.export_requests()), len(token_requests(sim))

            log = machine.run(sim)

            resumed = sim.export_requests()[exports:]
            assert resumed, f"run {n + 1} sent no export request"
            assert resumed[0].params["start_time"] == str(previous), f"run {n + 1} did not resume"
            refreshes = token_requests(sim)[tokens:]
            assert refreshes, f"run {n + 1} got no token"
            assert all(r.status == 200 for r in refreshes), f"run {n + 1}: a token request was refused"
            if auth == "refresh":
                assert refreshes[0].oauth_generation == newest, f"run {n + 1} traded an old refresh token"
                assert "invalid_grant" not in log
            else:
                assert {r.params["grant_type"] for r in refreshes} == {"client_credentials"}
                assert "auth: OAuth client credentials" in log
            events = [e for batch in batches for e in batch]
            assert_one_row_per_event(pg_schema, events)
            # The next machine reads what this one saved, from the database.
            other = b if machine is a else a
            previous = other.bookmark()
            assert previous == max(event_second(e) for e in batches[-1])
    finally:
        server.stop()

    for machine in (a, b):
        assert not (machine.project / ".meltano" / "meltano.db").exists(), "Meltano kept a local system database"
        assert_no_token_on_disk(sim, machine, auth)
    assert_state_and_store_in(meltano_database, store=auth == "refresh")


def assert_state_and_store_in(database: str, *, store: bool) -> None:
    """What must persist is rows of the one shared database: the state, and the token store only
    with OAuth refresh (client credentials create no table)."""
    args = ["psql", "-X", "-A", "-t", "-q", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database]
    sql = (
        f"select (select count(*) from state where state_id = '{STATE_ID}'),"
        " to_regclass('tap_zendesk_ticket_events_oauth_tokens') is not null"
    )
    out = subprocess.run([*args, "-c", sql], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == f"1|{'t' if store else 'f'}", "the state or the token store is not as the README says"


def test_readme_example_for_machines_without_disk_keeps_both_in_postgresql_and_holds_no_secret() -> None:
    """What the slow test runs, checked on every run: the two variables, and no secret in the README."""
    documented = readme_env()
    assert documented["MELTANO_DATABASE_URI"].startswith("postgresql+psycopg://")  # psycopg 3: meltano[postgres]
    assert "TAP_ZENDESK_TICKET_EVENTS_REFRESH_TOKEN" not in documented, "client credentials come first"
    assert "TAP_ZENDESK_TICKET_EVENTS_OAUTH_TOKEN_STORE" not in documented, "client credentials store nothing"
    refresh = readme_env("refresh")
    assert refresh["TAP_ZENDESK_TICKET_EVENTS_OAUTH_TOKEN_STORE"].startswith("postgresql://")
    assert set(refresh) - set(documented) == {
        "TAP_ZENDESK_TICKET_EVENTS_OAUTH_TOKEN_STORE",
        "TAP_ZENDESK_TICKET_EVENTS_REFRESH_TOKEN",
    }
    for name in ("PGPASSWORD", "TARGET_POSTGRES_PASSWORD", "TAP_ZENDESK_TICKET_EVENTS_REFRESH_TOKEN"):
        assert refresh[name] == "…", f"{name} must be a placeholder in the README"
    assert documented["TAP_ZENDESK_TICKET_EVENTS_CLIENT_SECRET"] == "…"
    assert STATE_ID.startswith(f"{documented['MELTANO_ENVIRONMENT']}:")
    assert "meltano run tap-zendesk-ticket-events target-postgres" in readme_command()
    section = docs_section("docs/production.md", "On Kubernetes, Airflow")
    assert f"`{STATE_ID}`" in section, "the README names the state id the runs keep"
