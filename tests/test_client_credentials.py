"""OAuth client credentials: a token per run, renewed in memory, nothing written, any worker.

The real tap against the simulator's ``/oauth/tokens``, which speaks the client-credentials
grant as Zendesk does since 2025-03-04: confidential clients only, the scopes asked for,
``expires_in`` honoured (the token dies then), 403 for a scope the token lacks or for a client
whose creator is not an admin. Every run is checked for leaked secrets: the client secret and
every token the simulator issued, in stdout (STATE included), the logs, and any file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import zendesk_simulator
from tap_zendesk_ticket_events import client_credentials, oauth_scopes
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import START_DATE
from tests.docs import marked_block
from tests.runners import (
    catalog_selecting,
    oauth_secrets,
    run_tap_in_process,
    start_tap,
    sync_in_process,
    token_requests,
)
from tests.virtual_clock import VirtualClock
from zendesk_simulator import (
    API_TOKEN,
    EMAIL,
    EXPORT_PATHS,
    OAUTH_TOKEN_PATH,
    Request,
    Simulator,
    make_events,
    make_metric_events,
)

CLIENT_CREDENTIALS = "client_credentials"


def cc_config(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    """Client-credentials settings: the OAuth client's identifier and secret, nothing else."""
    config: dict[str, Any] = {
        "api_url": sim.url,
        "client_id": sim.oauth.client_id,
        "client_secret": sim.oauth.client_secret,
        "start_date": START_DATE,
        "max_requests_per_minute": 10_000,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def api_requests(sim: Simulator) -> list[Request]:
    return [r for r in sim.requests if r.path != OAUTH_TOKEN_PATH]


def assert_no_oauth_leak(sim: Simulator, *texts: str) -> None:
    """Neither the client secret nor any token the simulator issued in any of ``texts``."""
    for text in texts:
        for secret in oauth_secrets(sim):
            assert secret not in text, "an OAuth secret leaked"


def assert_nothing_written(*roots: Path) -> None:
    """No file or directory under any of ``roots`` (the places a token store would go)."""
    for root in roots:
        assert not root.exists() or list(root.rglob("*")) == [], sorted(root.rglob("*"))


@pytest.fixture
def no_store_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Where a token store could be written by default (Meltano's project, the user's config)."""
    places = [tmp_path / "meltano-project", tmp_path / "xdg-config"]
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(places[0]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(places[1]))
    return places


# --- the grant: long backfills, several workers ----------------------------------------------


@pytest.mark.parametrize(
    "store",
    [None, "store/oauth-token.json", "postgresql://nobody@127.0.0.1:9/none"],
    ids=["no-store-setting", "a-store-file-set", "a-store-database-set"],
)
def test_backfill_over_several_token_lifetimes_renews_in_memory_and_writes_nothing(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    no_store_places: list[Path],
    store: str | None,
) -> None:
    """In process, on one virtual clock for the tap's auth and the simulator: a page takes 0.375 s
    of it and nothing else moves it. A store set for OAuth refresh is never touched: a file is not
    created, and a database nobody listens at would fail the run."""
    clock = VirtualClock()
    clock.install(monkeypatch, client_credentials, *zendesk_simulator.CLOCKED)
    events = make_events(4_000)
    sim.set_events(events)
    sim.latency = 0.375  # 16 pages: 6 s, three lifetimes of 2 s
    lifetime = 2.0
    sim.oauth.client_credentials_lifetime = lifetime  # announced, and the token dies exactly then
    monkeypatch.chdir(tmp_path)
    config = cc_config(sim, page_size=250, oauth_token_store=store)

    with caplog.at_level(logging.INFO):
        run = sync_in_process(config)

    assert run.returncode == 0, run.stderr
    assert_no_oauth_leak(sim, run.stdout, run.stderr, caplog.text)
    assert Counter(run.ids) == Counter(e["id"] for e in events)  # every id, exactly once
    tokens = token_requests(sim)
    assert len(tokens) >= 3, "the first token and at least two renewals mid-run"
    assert all(
        (r.status, r.params) == (200, {"grant_type": CLIENT_CREDENTIALS, "scope": "tickets:read"}) for r in tokens
    )
    # Each token was renewed before it died: no request was ever refused...
    assert [r.status for r in api_requests(sim) if r.status != 200] == []
    # ...and late in its life, never in its last tenth (where a slow request would reach
    # Zendesk with a dead token).
    for asked, following in itertools.pairwise(tokens):
        used = [r.at - asked.at for r in api_requests(sim) if r.oauth_generation == asked.oauth_generation]
        assert used, f"token {asked.oauth_generation} was never used"
        assert lifetime / 2 <= max(used) < lifetime * 0.9, used
        assert following.at - asked.at < lifetime
    assert caplog.text.count("an OAuth access token by client credentials (valid for 2 s") == len(tokens)
    assert "kept in memory only" in caplog.text
    assert_nothing_written(tmp_path, *no_store_places)


def test_two_workers_at_once_each_ask_for_their_own_token_and_neither_disturbs_the_other(
    sim: Simulator, tmp_path: Path
) -> None:
    """Two runs of one configuration at the same moment, as two pods or two Airflow workers would:
    no lock, no store, no token of one deleted by the other."""
    events = make_events(1_500)
    sim.set_events(events)
    both_hold_a_token = threading.Event()

    def hold_until_both_hold_a_token(request: Request) -> bool:
        # Counted, not timed: no export is answered before both runs have their own token,
        # so the two runs are under way at the same time however the machine schedules them.
        if len([r for r in token_requests(sim) if r.status == 200]) >= 2:
            both_hold_a_token.set()
        both_hold_a_token.wait(timeout=60)
        return False

    sim.oauth.on_export = hold_until_both_hold_a_token
    config = cc_config(sim, page_size=250)
    homes = {name: tmp_path / f"{name}-home" for name in ("first", "second")}
    for home in homes.values():
        home.mkdir()
    started = [start_tap(tmp_path, config, name=name, home=home, oauth=sim) for name, home in homes.items()]
    runs = [s.finish() for s in started]

    assert both_hold_a_token.is_set()
    tokens = token_requests(sim)
    assert [r.status for r in tokens] == [200, 200]
    assert len({r.oauth_generation for r in tokens}) == 2, "one token each"
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert_no_oauth_leak(sim, run.stdout, run.stderr)
        assert Counter(run.ids) == Counter(e["id"] for e in events)
        assert "auth: OAuth client credentials" in run.stderr  # the start line names the auth kind
        assert "Zendesk refused" not in run.stderr
    assert [r.status for r in api_requests(sim) if r.status != 200] == []
    assert_nothing_written(*homes.values())
    written = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert written == {f"{n}{suffix}" for n in homes for suffix in ("-config.json", ".out", ".err")}


def test_a_401_gets_a_new_token_and_sends_the_request_once_more_through_the_export_budget(sim: Simulator) -> None:
    events = make_events(1_000)
    sim.set_events(events)
    sim.faults.extend(["ok", "401", "ok", "401"])  # two refused requests (a revoked token, say)
    tap = TapZendeskTicketEvents(config=cc_config(sim, page_size=200))

    with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")):
        tap.sync_all()

    requests = sim.requests
    refused = [n for n, r in enumerate(requests) if r.status == 401]
    assert len(refused) == 2
    for n in refused:
        # The 401 is followed by one token request and the same request, answered.
        asked, again = requests[n + 1], requests[n + 2]
        assert (asked.path, asked.status, asked.params["grant_type"]) == (OAUTH_TOKEN_PATH, 200, CLIENT_CREDENTIALS)
        assert (again.path, again.params, again.status) == (requests[n].path, requests[n].params, 200)
        assert again.oauth_generation == asked.oauth_generation
    assert len(token_requests(sim)) == 3
    # The re-sends drew on the export budget like every export request; the token calls did not.
    assert tap.throttle.requests == len(api_requests(sim))


def test_the_default_scopes_serve_every_stream(sim: Simulator, tmp_path: Path) -> None:
    """Each stream the tap has declares its scope, and the default asks for all of them: a run of
    every stream, against a simulator that checks each request's scope, is answered throughout."""
    config = cc_config(sim)
    streams = [s["tap_stream_id"] for s in TapZendeskTicketEvents(config=config).catalog_dict["streams"]]
    assert sorted(oauth_scopes.NEEDED) == sorted(streams)
    assert oauth_scopes.DEFAULT == "tickets:read"
    sim.set_events(make_events(300))
    sim.set_metric_events(make_metric_events(100))

    run = sync_in_process(config, catalog=catalog_selecting(config, *streams))

    assert run.returncode == 0, run.stderr
    assert {r.path.removesuffix(".json") for r in api_requests(sim)} == {
        "/api/v2/incremental/ticket_events",
        "/api/v2/incremental/ticket_metric_events",
    }
    assert [r.status for r in sim.requests] == [200] * len(sim.requests)
    assert [r.params["scope"] for r in token_requests(sim)] == ["tickets:read"] * len(token_requests(sim))
    assert run.records_of("ticket_metric_events")


def test_the_scopes_setting_is_what_is_asked_for(sim: Simulator) -> None:
    sim.set_events(make_events(20))

    run = sync_in_process(cc_config(sim, oauth_scopes="read  tickets:read read"))

    assert run.returncode == 0, run.stderr
    assert [r.params["scope"] for r in token_requests(sim)] == ["read tickets:read"]


# --- --test ----------------------------------------------------------------------------------------


def test_connection_test_with_client_credentials_is_one_token_request_and_one_export_request(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.set_events(make_events(20))
    done = run_tap_in_process(tmp_path, cc_config(sim), extra_args=["--test"])

    assert done.returncode == 0, done.stderr
    assert_no_oauth_leak(sim, done.stdout, done.stderr)
    assert [(r.path in EXPORT_PATHS, r.status) for r in sim.requests] == [(False, 200), (True, 200)]
    assert token_requests(sim)[0].params["grant_type"] == CLIENT_CREDENTIALS
    assert "Connection test passed" in done.stderr
    assert "auth: OAuth client credentials" in done.stderr
    assert done.stdout == ""


# --- each error, one line naming what to fix -------------------------------------------------------


def wrong_secret(sim: Simulator) -> dict[str, Any]:
    return cc_config(sim, client_secret="not-the-client-secret-42")


def public_client(sim: Simulator) -> dict[str, Any]:
    sim.oauth.confidential = False
    return cc_config(sim)


def grant_not_offered(sim: Simulator) -> dict[str, Any]:
    sim.oauth.client_credentials_enabled = False
    return cc_config(sim)


def scope_zendesk_wants(sim: Simulator) -> dict[str, Any]:
    # Zendesk asks a scope of the export the token lacks (as it would after moving the export).
    sim.oauth.required_scopes.update(dict.fromkeys(EXPORT_PATHS, "ticket_events:read"))
    return cc_config(sim)


def creator_not_an_admin(sim: Simulator) -> dict[str, Any]:
    sim.oauth.creator_is_admin = False
    return cc_config(sim)


ERRORS = [
    (
        "invalid_client",
        wrong_secret,
        ["Zendesk refused the OAuth client (401 invalid_client", "'client_id'", "'client_secret'", "OAuth clients"],
        [(OAUTH_TOKEN_PATH, 401)],
    ),
    (
        "unauthorized_client",
        public_client,
        ["the client-credentials grant (400 unauthorized_client", '"Confidential"', "'client_id'", "OAuth clients"],
        [(OAUTH_TOKEN_PATH, 400)],
    ),
    (
        "unsupported_grant_type",
        grant_not_offered,
        ["the client-credentials grant (400 unsupported_grant_type", '"Confidential"', "'client_secret'"],
        [(OAUTH_TOKEN_PATH, 400)],
    ),
    (
        "missing scope",
        scope_zendesk_wants,
        ["Zendesk denied access (403", "required scopes: ticket_events:read", "'oauth_scopes'"],
        [(OAUTH_TOKEN_PATH, 200), ("/api/v2/incremental/ticket_events", 403)],
    ),
    (
        "creator not an admin",
        creator_not_an_admin,
        ["Zendesk denied access (403", "admin", '"Confidential"', "'client_id' and 'client_secret'", "OAuth clients"],
        [(OAUTH_TOKEN_PATH, 200), ("/api/v2/incremental/ticket_events", 403)],
    ),
]


@pytest.mark.parametrize(("configure", "says", "requests"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_each_refusal_is_one_line_naming_the_settings_to_fix_with_no_secret_at_debug_level(
    sim: Simulator, tmp_path: Path, configure: Any, says: list[str], requests: list[tuple[str, int]]
) -> None:
    sim.set_events(make_events(20))
    config = configure(sim)

    run = run_tap_in_process(tmp_path, config, env={"LOGLEVEL": "DEBUG"})

    assert run.returncode == 1
    assert "| DEBUG" in run.stderr
    line = run.one_error_line()
    for text in says:
        assert text in line, line
    assert_no_oauth_leak(sim, run.stdout, run.stderr)
    assert config["client_secret"] not in run.stdout + run.stderr
    assert [(r.path.removesuffix(".json"), r.status) for r in sim.requests] == requests  # no retry
    assert run.ids == []


# --- the README's migration from an API token -------------------------------------------------------


def test_readme_migration_from_an_api_token_keeps_the_state_and_checks_with_one_token_request(
    sim: Simulator, tmp_path: Path
) -> None:
    """The README's three steps, as far as the simulator goes: the settings an API-token run used,
    edited as the README's block says, pass ``--test`` and resume from the API-token run's state."""
    block = marked_block("migration")
    removed = set(re.findall(r"^#\s+(TAP_ZENDESK_TICKET_EVENTS_\w+)=", block, re.M))
    added = dict(line.split("=", 1) for line in block.splitlines() if line.startswith("TAP_"))
    commands = [line for line in block.splitlines() if line and not line.startswith(("#", "TAP_"))]
    prefix = "TAP_ZENDESK_TICKET_EVENTS_"
    assert removed == {f"{prefix}EMAIL", f"{prefix}API_TOKEN"}
    assert set(added) == {f"{prefix}CLIENT_ID", f"{prefix}CLIENT_SECRET"}
    assert set(added.values()) == {"…"}, "placeholders only in the README"
    assert commands == ["meltano invoke tap-zendesk-ticket-events --test"]
    first = make_events(600, start=1_700_000_000)
    sim.set_events(first)
    before = {
        f"{prefix}API_URL": sim.url,
        f"{prefix}START_DATE": START_DATE,
        f"{prefix}EMAIL": EMAIL,
        f"{prefix}API_TOKEN": API_TOKEN,
    }
    state_file = tmp_path / "state.json"

    # Before: a run with the API token, and the state it leaves.
    old_run = run_tap_in_process(None, env=before, extra_args=["--config", "ENV"])
    assert old_run.returncode == 0, old_run.stderr
    state_file.write_text(json.dumps(old_run.states[-1]))
    bookmark = old_run.bookmark
    assert bookmark is not None

    # Step 2: the README's edit of the settings, with this client's identifier and secret.
    values = {f"{prefix}CLIENT_ID": sim.oauth.client_id, f"{prefix}CLIENT_SECRET": sim.oauth.client_secret}
    after = {name: value for name, value in before.items() if name not in removed} | values
    sim.requests.clear()
    checked = run_tap_in_process(None, env=after, extra_args=["--config", "ENV", "--test"])
    assert checked.returncode == 0, checked.stderr
    assert [(r.path in EXPORT_PATHS, r.status) for r in sim.requests] == [(False, 200), (True, 200)]
    assert "auth: OAuth client credentials" in checked.stderr

    # Step 3: the next run resumes from the API-token run's bookmark.
    later = make_events(300, start=bookmark, first_id=max(e["id"] for e in first) + 11)
    sim.add_events(later)
    sim.requests.clear()
    new = run_tap_in_process(None, env=after, extra_args=["--config", "ENV", "--state", str(state_file)])
    assert new.returncode == 0, new.stderr
    assert_no_oauth_leak(sim, new.stdout, new.stderr, checked.stderr)
    exports = api_requests(sim)
    assert exports[0].params["start_time"] == str(bookmark)
    assert {r.authorization_scheme for r in exports} == {"Bearer"}
    assert {e["id"] for e in later} <= set(new.ids)
    assert set(new.ids) <= {e["id"] for e in first + later if e["timestamp"] >= bookmark}
