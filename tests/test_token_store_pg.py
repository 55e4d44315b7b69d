"""The OAuth token store in PostgreSQL: runs on machines that keep no disk share one grant.

Each "machine" is a directory of its own: its own HOME (so its own default token file), its
own working directory, no file shared with the other. They share only the PostgreSQL URL, as
two Kubernetes pods or CI runners would. Needs the local PostgreSQL (skipped without it,
unless CI=true); every run is checked for the database password and every token.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_HOST, PG_PORT, PG_USER, START_DATE, PsqlError, psql, unavailable
from tests.runners import StartedTap, TapRun, assert_no_oauth_secret, assert_no_secret, start_tap, token_requests
from zendesk_simulator import Simulator, make_events

pytestmark = pytest.mark.postgres

DATABASE = "test"
#: Trust auth ignores it; the tap must never print it.
PASSWORD = "pg-pass-do-not-print-9c1e"
TABLE = "tap_zendesk_ticket_events_oauth_tokens"


@pytest.fixture
def pg_url(sim: Simulator) -> Any:
    """The shared store's URL (with a password in it), and the account's rows removed after."""
    try:
        psql("select 1")
    except (PsqlError, FileNotFoundError) as exc:
        unavailable(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {str(exc).splitlines()[0] if str(exc) else exc}"
        )
    url = f"postgresql://{PG_USER}:{PASSWORD}@{PG_HOST}:{PG_PORT}/{DATABASE}"
    yield url
    account = sim.url.removeprefix("http://").replace(":", "-")
    psql_test(f"delete from {TABLE} where account = '{account}'")


def psql_test(sql: str) -> str:
    """psql on the test database (conftest's psql talks to 'postgres')."""
    proc = subprocess.run(
        ["psql", "-X", "-A", "-t", "-q", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", DATABASE, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


@dataclass
class Machine:
    """A machine that keeps no disk: its own HOME and working directory."""

    root: Path
    sim: Simulator
    config: dict[str, Any]
    runs: int = 0

    def start_with_state(self, state_file: Path) -> StartedTap:
        return self.start(extra_args=("--state", str(state_file)))

    def start(self, extra_args: tuple[str, ...] = (), **env: str) -> StartedTap:
        self.runs += 1
        work = self.root / "work"
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        return start_tap(
            work, self.config, extra_args=extra_args, env=env, home=self.root / "home", cwd=work, name=f"run{self.runs}"
        )

    def finish(self, started: StartedTap, timeout: float = 120) -> TapRun:
        run = started.finish(timeout)
        assert_no_secret(run.stdout, run.stderr, also=[PASSWORD])  # the database password
        assert_no_oauth_secret(self.sim, self.root / "work", run)  # home holds only a file store, if any
        return run

    def run(self, **env: str) -> TapRun:
        return self.finish(self.start((), **env))


def machines(sim: Simulator, tmp_path: Path, store: str | None, **overrides: Any) -> tuple[Machine, Machine]:
    """Two machines with the same settings: the refresh token granted once, and the store."""
    config: dict[str, Any] = {
        "api_url": sim.url,
        "refresh_token": sim.oauth.issue_tokens()[1],
        "client_id": sim.oauth.client_id,
        "client_secret": sim.oauth.client_secret,
        "start_date": START_DATE,
        "max_requests_per_minute": 10_000,
        **overrides,
    }
    if store is not None:
        config["oauth_token_store"] = store
    return Machine(tmp_path / "a", sim, dict(config)), Machine(tmp_path / "b", sim, dict(config))


def test_two_machines_alternate_runs_that_each_refresh(sim: Simulator, tmp_path: Path, pg_url: str) -> None:
    sim.set_events(make_events(200))
    a, b = machines(sim, tmp_path, pg_url)

    for n, machine in enumerate([a, b, a, b]):
        sim.oauth.expire_access_tokens()  # each run must refresh: the last run's token is dead
        run = machine.run()
        assert run.returncode == 0, run.stderr
        assert len(run.ids) == 200
        assert len(token_requests(sim)) == n + 1, "each run refreshed exactly once"
        # It traded the newest refresh token (the pair issued last), never a rotated-away one.
        assert token_requests(sim)[-1].oauth_generation == n + 1
    assert all(r.status == 200 for r in token_requests(sim))
    assert not (a.root / "home" / ".config").exists(), "the PostgreSQL store writes no file"


def test_without_a_shared_store_the_second_machine_is_told_why(sim: Simulator, tmp_path: Path) -> None:
    """What happens today on machines that keep no disk, and the line that says what to do."""
    sim.set_events(make_events(20))
    a, b = machines(sim, tmp_path, None)
    assert a.run().returncode == 0

    run = b.run()

    assert run.returncode == 1
    line = run.one_error_line()
    assert "invalid_grant" in line
    assert "which a run elsewhere probably rotated already" in line
    assert "'oauth_token_store' (a PostgreSQL URL" in line


def test_two_machines_at_once_share_one_refresh(sim: Simulator, tmp_path: Path, pg_url: str) -> None:
    sim.set_events(make_events(300))
    sim.oauth.latency = 1.0  # the token answer is slow: both runs want it at the same moment
    a, b = machines(sim, tmp_path, pg_url, page_size=100)
    # Both machines know the store already (a first run seeded it), and its token is dead.
    assert a.run().returncode == 0
    sim.oauth.expire_access_tokens()
    before = len(token_requests(sim))

    started = [a.start(), b.start()]
    runs = [m.finish(s) for m, s in zip((a, b), started, strict=True)]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert len(run.ids) == 300
    assert len(token_requests(sim)) - before == 1, "the second run waited for the lock and used the new token"
    assert any("Using the OAuth access token another run refreshed" in r.stderr for r in runs) or any(
        "Waiting for another run" in r.stderr for r in runs
    )


def test_a_run_killed_right_after_a_refresh_loses_nothing_for_the_other_machine(
    sim: Simulator, tmp_path: Path, pg_url: str
) -> None:
    sim.set_events(make_events(400))
    a, b = machines(sim, tmp_path, pg_url, page_size=50)
    started: list[StartedTap] = []
    killed = threading.Event()

    def kill_at_first_use_of_the_refreshed_token(request: Any) -> bool:
        # The run sends the token its refresh returned: the refresh is over, so its answer must
        # be committed already. Killed at that request (SIGKILL: no handler, no cleanup), not
        # some time after the refresh: a kill timed from the token answer could land before
        # the write, the window no client can close.
        if request.oauth_generation != 2 or killed.is_set():
            return False
        while not started:
            time.sleep(0.01)
        started[0].proc.kill()
        started[0].proc.wait()
        killed.set()
        return True

    sim.oauth.on_export = kill_at_first_use_of_the_refreshed_token
    started.append(a.start())
    a.finish(started[0])
    assert killed.is_set()
    assert sim.oauth.refreshed == 1
    sim.oauth.on_export = None
    sim.oauth.expire_access_tokens()

    run = b.run()

    assert run.returncode == 0, run.stderr
    assert len(run.ids) == 400
    assert token_requests(sim)[-1].status == 200, "the rotated token was committed before it was used"
    assert token_requests(sim)[-1].oauth_generation == 2


def test_a_store_down_at_start_is_one_line_without_the_password(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    down = f"postgresql://{PG_USER}:{PASSWORD}@127.0.0.1:1/{DATABASE}"
    a, _ = machines(sim, tmp_path, down)

    run = a.run(LOGLEVEL="DEBUG")

    assert run.returncode == 1
    line = run.one_error_line()
    assert f"postgresql://{PG_USER}@127.0.0.1:1/{DATABASE}" in line
    assert sim.requests == [], "no export request, no token request"


def test_no_password_or_token_in_any_output_at_debug_level(sim: Simulator, tmp_path: Path, pg_url: str) -> None:
    sim.set_events(make_events(100))
    a, b = machines(sim, tmp_path, pg_url, page_size=30)

    for machine in (a, b, a):
        sim.oauth.expire_access_tokens()
        run = machine.run(LOGLEVEL="DEBUG")  # Machine.finish checks the password and every token
        assert run.returncode == 0, run.stderr
    row = psql_test(
        f"select count(*) from {TABLE} where account = '{sim.url.removeprefix('http://').replace(':', '-')}'"
    )
    assert row == "1", "one row per account and OAuth client"


@pytest.mark.parametrize("store", ["file", "postgresql"])
def test_a_mistyped_refresh_token_does_not_cost_the_grant(
    sim: Simulator, tmp_path: Path, pg_url: str, store: str
) -> None:
    sim.set_events(make_events(30))
    location = pg_url if store == "postgresql" else str(tmp_path / "shared" / "oauth-token.json")
    a, _ = machines(sim, tmp_path, location)
    good = dict(a.config)
    assert a.run().returncode == 0

    a.config = {**good, "refresh_token": "sim-rt-mistyped"}
    sim.oauth.expire_access_tokens()
    mistyped = a.run()

    assert mistyped.returncode == 0, mistyped.stderr
    assert "Zendesk refused the configured 'refresh_token'" in mistyped.stderr
    assert "keeps its own refresh token" in mistyped.stderr
    assert len(mistyped.ids) == 30

    a.config = good  # the right settings again: the grant is still there
    sim.oauth.expire_access_tokens()
    again = a.run()
    assert again.returncode == 0, again.stderr
    assert len(again.ids) == 30
    assert "invalid_grant" not in again.stderr


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("mysql://root:pw-not-shown@db/meta", "is a mysql:// URL"),
        ("s3://bucket/tokens.json", "is a s3:// URL"),
        ("postgresql://u:pw-not-shown@db:port/meta", "its port is not a number"),
    ],
)
def test_a_url_of_another_kind_is_refused_never_taken_as_a_path(
    sim: Simulator, tmp_path: Path, value: str, said: str
) -> None:
    a, _ = machines(sim, tmp_path, value)

    run = a.run()

    assert run.returncode == 1
    line = run.one_error_line()
    assert "'oauth_token_store'" in line
    assert said in line
    assert "pw-not-shown" not in run.stderr
    assert sorted(p.name for p in (a.root / "work").iterdir()) == ["run1-config.json", "run1.err", "run1.out"]
    assert sim.requests == []


def test_a_postgresql_url_without_psycopg_names_the_extra(sim: Simulator, tmp_path: Path) -> None:
    hide = tmp_path / "no-psycopg"
    hide.mkdir()
    # As if the extra were not installed: the import of psycopg fails.
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg'] = None\n")
    a, _ = machines(sim, tmp_path, f"postgresql://{PG_USER}:{PASSWORD}@{PG_HOST}:{PG_PORT}/{DATABASE}")

    run = a.run(PYTHONPATH=str(hide))

    assert run.returncode == 1
    line = run.one_error_line()
    assert "tap-zendesk-ticket-events[postgres]" in line
    assert sim.requests == []


class CuttableProxy:
    """A loopback TCP proxy to the local PostgreSQL that can be cut, as a lost network would."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cut_off = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_off.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                client.close()
                return
            upstream = socket.create_connection((PG_HOST, int(PG_PORT)))
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def cut(self) -> None:
        self.cut_off.set()
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way: close() alone does not
        self.server.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_a_store_lost_mid_run_when_a_refresh_is_due_stops_with_the_last_safe_state(
    sim: Simulator, tmp_path: Path, pg_url: str
) -> None:
    events = make_events(300)
    sim.set_events(events)
    sim.latency = 0.2
    proxy = CuttableProxy()
    a, b = machines(sim, tmp_path, f"postgresql://{PG_USER}:{PASSWORD}@127.0.0.1:{proxy.port}/{DATABASE}", page_size=20)
    started = a.start()
    deadline = time.monotonic() + 60
    while len(sim.export_requests()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    proxy.cut()
    sim.oauth.expire_access_tokens()  # the next page needs a refresh, and the store is gone

    run = a.finish(started)

    assert run.returncode == 1
    line = run.one_error_line()
    assert f"127.0.0.1:{proxy.port}/{DATABASE}" in line
    assert "token store" in line
    assert run.states, "the pages exported before were checkpointed"
    emitted = set(run.ids)
    assert 0 < len(emitted) < len(events)
    # The last STATE is safe: resumed from it (the store reachable again), nothing is missing.
    b.config = {**b.config, "oauth_token_store": pg_url}
    state_file = b.root / "state.json"
    b.root.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(run.states[-1]))
    resumed = b.finish(b.start_with_state(state_file))
    assert resumed.returncode == 0, resumed.stderr
    assert emitted | set(resumed.ids) == {e["id"] for e in events}


@pytest.fixture
def own_database(pg_url: str) -> Any:
    """A database of this test's own, so that terminating its connections touches no other test's."""
    name = f"tzte_reconnect_{threading.get_native_id()}_{int(time.monotonic() * 1000) % 1_000_000}"
    psql(f"create database {name}")
    try:
        yield name, pg_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        psql(f"drop database if exists {name} with (force)")


def test_a_connection_the_server_closed_is_made_again_before_the_lock(
    sim: Simulator, tmp_path: Path, own_database: tuple[str, str]
) -> None:
    """The server ends the store's idle connection (an idle timeout, a restart, a failover), and
    Zendesk refuses the access token on the same request: the refresh that follows takes the
    lock on a connection that is gone. It connects once more, and the run goes on."""
    database, url = own_database
    events = make_events(300)
    sim.set_events(events)
    a, _ = machines(sim, tmp_path, url, page_size=50)
    terminated: list[str] = []

    def terminate_the_store_connection(request: Any) -> bool:
        if len(sim.export_requests()) == 3 and not terminated:
            terminated.append(
                psql(f"select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = '{database}'")
            )
            sim.oauth.expire_access_tokens()  # this request is refused: a refresh is due at once
        return False

    sim.oauth.on_export = terminate_the_store_connection

    run = a.run()

    assert terminated == ["1"], "the store's one connection was terminated"
    assert run.returncode == 0, run.stderr
    assert "closed the connection" in run.stderr
    assert "connecting again" in run.stderr
    assert sorted(run.ids) == sorted(e["id"] for e in events)
    assert [r.status for r in token_requests(sim)] == [200, 200], "the first token, then the refresh after the 401"
    assert 401 in [r.status for r in sim.requests]


def test_a_connection_lost_while_the_lock_is_held_is_still_one_line(
    sim: Simulator, tmp_path: Path, own_database: tuple[str, str]
) -> None:
    """Lost during the token request, the lock went with the session: no second connection (it
    would not hold the lock the refresh relies on), one line, the last safe STATE."""
    database, url = own_database
    sim.set_events(make_events(100))
    sim.oauth.latency = 1.0  # the lock is held this long around the token request
    a, _ = machines(sim, tmp_path, url, page_size=50)
    started = a.start()
    deadline = time.monotonic() + 60
    while not token_requests(sim) and time.monotonic() < deadline:
        time.sleep(0.01)
    psql(f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{database}'")

    run = a.finish(started)

    assert run.returncode == 1
    line = run.one_error_line()
    assert "Lost the OAuth token store" in line
    assert "connecting again" not in run.stderr
    assert run.ids == []
