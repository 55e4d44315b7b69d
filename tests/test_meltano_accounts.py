"""Two Zendesk accounts in one Meltano project, as the README's "Several Zendesk accounts" lays out.

A fresh project (this repo's meltano.yml with the README's children merged in), two simulators
on two ports: acme with an API token, globex with OAuth refresh. Both serve the same event ids;
globex's events are acme's seven seconds later, so their bookmarks differ and the `timestamp`
column tells whose event a row is. Both pipelines run at once, twice; each must resume from its
own state and load its own account's events, once each, into its own schema.
Run it alone with `python3 tasks.py pytest -m postgres`.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import iso, psql, unavailable
from tests.docs import marked_block as readme_block
from tests.docs import section as docs_section
from tests.runners import assert_no_secret
from tests.test_meltano import (
    MELTANO,
    ROOT,
    assert_one_row_per_event,
    meltano,
    saved_bookmark,
    shared_env,
    summary,
)
from zendesk_simulator import (
    CLIENT_SECRET,
    OAUTH_TOKEN_PATH,
    OAuthServer,
    Simulator,
    SimulatorServer,
    event_second,
    make_events,
)

ACCOUNTS = ("acme", "globex")
SHIFT = 7  # globex's events are acme's, this many seconds later
TAP = "tap-zendesk-ticket-events"


def pipeline(account: str) -> tuple[str, str]:
    return f"{TAP}--{account}", f"target-postgres--{account}"


def state_id(account: str) -> str:
    tap, target = pipeline(account)
    return f"dev:{tap}-to-{target}"


def shifted(events: list[dict[str, Any]], seconds: int) -> list[dict[str, Any]]:
    """The same events (same ids), ``seconds`` later."""
    moved = copy.deepcopy(events)
    for event in moved:
        second = event_second(event) + seconds
        event["timestamp"] = second
        for key in ("created_at", "time"):
            if key in event:
                event[key] = iso(second)
    return moved


def accounts_project(project: Path, urls: dict[str, str], schema_prefix: str) -> None:
    """This repo's meltano.yml (the tap installed from this checkout) with the README's children;
    each tap child pointed at its simulator, each loader child at a schema of this test."""
    config = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (tap,) = (p for p in config["plugins"]["extractors"] if p["name"] == TAP)
    tap["pip_url"] = f"-e {ROOT}"
    block = readme_block("accounts")
    for account in ACCOUNTS:
        subdomain = f"      subdomain: {account}\n"
        schema = f"default_target_schema: zendesk_{account}_"
        assert block.count(subdomain) == block.count(schema) == 1, f"the README's layout lost {account!r}"
        # A simulator is no *.zendesk.com subdomain: api_url replaces subdomain (never both).
        block = block.replace(subdomain, f"      api_url: {urls[account]}\n")
        block = block.replace(schema, f"default_target_schema: {schema_prefix}_{account}_")
    children = yaml.safe_load(block)["plugins"]
    for kind in ("extractors", "loaders"):
        config["plugins"][kind] += children[kind]
    project.mkdir()
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_together(project: Path, env: dict[str, str], name: str, *oauths: OAuthServer) -> None:
    """``meltano run`` of both accounts' pipelines, started together (output to files, so that
    neither waits on a full pipe while the other is read)."""
    procs = {}
    for account in ACCOUNTS:
        out, err = (project / f"{name}-{account}.{s}" for s in ("out", "err"))
        with out.open("w") as stdout, err.open("w") as stderr:
            procs[account] = subprocess.Popen(
                [str(MELTANO), "run", *pipeline(account)],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
    for account, proc in procs.items():
        returncode = proc.wait(timeout=600)
        printed, logged = ((project / f"{name}-{account}.{s}").read_text() for s in ("out", "err"))
        assert_no_secret(printed, logged)
        for secret in (CLIENT_SECRET, *(token for oauth in oauths for token in oauth.issued)):
            assert secret not in printed + logged, "an OAuth secret leaked into Meltano's output"
        assert returncode == 0, f"{name} run of {account} exited {returncode}:\n{summary(logged)}"


def assert_loaded(schema: str, events: list[dict[str, Any]]) -> None:
    """Exactly these events, once each, with their account's ``timestamp``."""
    assert_one_row_per_event(schema, events)
    rows = psql(f'select id, "timestamp" from "{schema}".ticket_events').split()
    landed = {int(event_id): int(second) for event_id, second in (row.split("|") for row in rows)}
    assert landed == {e["id"]: event_second(e) for e in events}, f"{schema} holds another account's events"


@pytest.mark.postgres
def test_two_accounts_run_at_once_each_into_its_own_schema_from_its_own_state(tmp_path: Path, pg_schema: str) -> None:
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    sims = {account: Simulator() for account in ACCOUNTS}
    first = {"acme": make_events(600, seed=61)}
    first["globex"] = shifted(first["acme"], SHIFT)
    servers = []
    for account, sim in sims.items():
        sim.set_events(first[account])
        servers.append(SimulatorServer(sim).start())
    schemas = {account: f"{pg_schema}_{account}_dev" for account in ACCOUNTS}
    project = tmp_path / "project"
    try:
        accounts_project(project, {a: s.url for a, s in sims.items()}, pg_schema)
        globex_oauth = sims["globex"].oauth
        # Shared settings on the parents. The parent's schema variable is a decoy: each loader
        # child sets its own, which must win (a leftover .env line must not merge the accounts).
        env = shared_env(pg_schema)
        env.update(
            {
                # As the README's .env: acme with client credentials, globex with OAuth refresh.
                "TAP_ZENDESK_TICKET_EVENTS__ACME_CLIENT_ID": sims["acme"].oauth.client_id,
                "TAP_ZENDESK_TICKET_EVENTS__ACME_CLIENT_SECRET": sims["acme"].oauth.client_secret,
                "TAP_ZENDESK_TICKET_EVENTS__GLOBEX_REFRESH_TOKEN": globex_oauth.issue_tokens()[1],
                "TAP_ZENDESK_TICKET_EVENTS__GLOBEX_CLIENT_ID": globex_oauth.client_id,
                "TAP_ZENDESK_TICKET_EVENTS__GLOBEX_CLIENT_SECRET": globex_oauth.client_secret,
            }
        )
        meltano(project, env, "install", timeout=600)

        run_together(project, env, "first", *(sim.oauth for sim in sims.values()))
        bookmarks = {}
        for account in ACCOUNTS:
            assert_loaded(schemas[account], first[account])
            bookmarks[account] = saved_bookmark(project, env, state_id(account))
            assert bookmarks[account] == max(event_second(e) for e in first[account]), account
        assert bookmarks["globex"] == bookmarks["acme"] + SHIFT

        # New events for both, the first of them in the bookmark's own second.
        second = {"acme": make_events(300, start=bookmarks["acme"], first_id=max(e["id"] for e in first["acme"]) + 11)}
        second["globex"] = shifted(second["acme"], SHIFT)
        seen = {}
        for account, sim in sims.items():
            sim.add_events(second[account])
            seen[account] = len(sim.export_requests())
        run_together(project, env, "second", *(sim.oauth for sim in sims.values()))
        for account, sim in sims.items():
            resumed = sim.export_requests()[seen[account] :]
            assert resumed, f"the second run of {account} sent no request"
            assert resumed[0].params["start_time"] == str(bookmarks[account]), f"{account} resumed elsewhere"
            assert_loaded(schemas[account], first[account] + second[account])
            assert saved_bookmark(project, env, state_id(account)) == max(event_second(e) for e in second[account])

        # Each account with its own credentials; globex's second run took the token that the
        # first run left in its store, named after its account (the host and port of api_url).
        for sim in sims.values():  # the children inherit the parent's select: ticket_events alone
            assert sim.export_requests("ticket_metric_events") == []
        assert {r.authorization_scheme for r in sims["acme"].export_requests()} == {"Bearer"}
        assert {r.authorization_scheme for r in sims["globex"].export_requests()} == {"Bearer"}
        acme_tokens = [r for r in sims["acme"].requests if r.path == OAUTH_TOKEN_PATH]
        assert [(r.params["grant_type"], r.status) for r in acme_tokens] == [("client_credentials", 200)] * 2
        assert globex_oauth.refreshed == 1
        assert {r.oauth_generation for r in sims["globex"].export_requests()[seen["globex"] :]} == {2}
        store = f"{sims['globex'].url.split('://')[1].replace(':', '-')}-oauth-token.json"
        stores = project / ".meltano" / "run" / TAP
        assert sorted(p.name for p in stores.iterdir()) == [store, f"{store}.lock"]

        # Only the two pipelines' states, under the ids the README names; nothing in the decoy.
        listed = meltano(project, env, "--log-level=warning", "state", "list").split()
        assert sorted(listed) == sorted(state_id(a) for a in ACCOUNTS)
        section = docs_section("docs/production.md", "Several Zendesk accounts")
        assert set(re.findall(r"`(dev:[\w-]+)`", section)) == set(listed)
        assert psql(f"select count(*) from information_schema.schemata where schema_name = '{pg_schema}'") == "0"
    finally:
        for server in servers:
            server.stop()
        for schema in schemas.values():
            psql(f'drop schema if exists "{schema}" cascade')
