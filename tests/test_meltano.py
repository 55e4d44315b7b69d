"""End to end with Meltano: `meltano run tap-zendesk-ticket-events target-postgres`, twice.

As a scheduled job would, in a temporary copy of the project: `meltano install`, a first run
against the simulator into a fresh schema of the local PostgreSQL, then new events and a second
run that must resume from the bookmark Meltano saved. Needs the server at 127.0.0.1:5432 (user
postgres) and `psql`; skipped without them, except under CI=true, where it must run.
Run it alone with `python3 tasks.py pytest -m postgres`.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PG_DATABASE, PG_HOST, PG_PORT, PG_USER, START_DATE, psql, unavailable
from tests.docs import marked_block, page, pages
from tests.docs import marked_block as readme_block
from tests.docs import section as docs_section
from tests.redaction_data import CARD, PASSPORT, PHONE, Planted, plant
from tests.runners import assert_no_secret, bookmark_of, hermetic_env, run_command, tap_output
from tests.test_derived import expected_comments, expected_history
from zendesk_simulator import (
    API_TOKEN,
    EMAIL,
    Request,
    Simulator,
    SimulatorServer,
    event_second,
    make_events,
    make_metric_events,
    make_recorded_events,
)
from zendesk_simulator.__main__ import DOTENV_HEADER

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
STATE_ID = "dev:tap-zendesk-ticket-events-to-target-postgres"
# What a fresh clone would not have: virtualenvs, Meltano's installs and state, a developer's
# .env (real credentials must never reach a test), outputs and caches.
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv*", ".meltano", ".env", "output", "*_cache", "__pycache__", "*.egg-info", "dist", "build"
)


def meltano_env(api_url: str, schema: str) -> dict[str, str]:
    """All settings from the environment, as in production; nothing inherited from the shell."""
    env = shared_env(schema)
    env.update(
        {
            "TAP_ZENDESK_TICKET_EVENTS_API_URL": api_url,
            "TAP_ZENDESK_TICKET_EVENTS_EMAIL": EMAIL,
            "TAP_ZENDESK_TICKET_EVENTS_API_TOKEN": API_TOKEN,
        }
    )
    return env


def meltano_base_env() -> dict[str, str]:
    """This process's environment without any setting of Meltano or of a plugin, nor the
    virtualenv of the tests; Meltano's usage statistics off."""
    env = hermetic_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false")
    env.pop("VIRTUAL_ENV", None)
    return env


def shared_env(schema: str) -> dict[str, str]:
    """The settings that are not an account's: the tap's start and budget, the PostgreSQL server."""
    env = meltano_base_env()
    env.update(
        {
            "TAP_ZENDESK_TICKET_EVENTS_START_DATE": START_DATE,
            "TAP_ZENDESK_TICKET_EVENTS_INCLUDE_COMMENT_EVENTS": "true",
            "TAP_ZENDESK_TICKET_EVENTS_MAX_REQUESTS_PER_MINUTE": "10000",
            "TARGET_POSTGRES_HOST": PG_HOST,
            "TARGET_POSTGRES_PORT": PG_PORT,
            "TARGET_POSTGRES_USER": PG_USER,
            # The target insists on a password; the local server trusts loopback and ignores it.
            "TARGET_POSTGRES_PASSWORD": os.environ.get("PGPASSWORD", "postgres"),
            "TARGET_POSTGRES_DATABASE": PG_DATABASE,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
    )
    return env


def meltano(project: Path, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    proc = run_command([str(MELTANO), *args], cwd=project, env=env, timeout=timeout)
    assert_no_secret(proc.stdout, proc.stderr)
    assert proc.returncode == 0, f"meltano {' '.join(args)} exited {proc.returncode}:\n{summary(proc.stderr)}"
    return proc.stdout


def summary(log: str) -> str:
    """The error lines of a Meltano log, then its end, each line cut short (SQL dumps are huge)."""
    lines = [line[:300] for line in log.splitlines()]
    errors = [line for line in lines if "error" in line.lower() or "exception" in line.lower()]
    return "\n".join([*errors[-30:], "--- last lines:", *lines[-15:]])


def saved_bookmark(project: Path, env: dict[str, str], state_id: str = STATE_ID) -> int:
    return bookmark_of(
        json.loads(meltano(project, env, "--log-level=warning", "state", "get", state_id))["singer_state"]
    )


def assert_one_row_per_event(schema: str, events: list[dict[str, Any]]) -> None:
    rows, distinct = psql(f'select count(*), count(distinct id) from "{schema}".ticket_events').split("|")
    ids = {int(i) for i in psql(f'select id from "{schema}".ticket_events').split()}
    assert ids == {e["id"] for e in events}
    assert int(rows) == int(distinct) == len(events), "an event id has more than one row"


def assert_nested_fields_are_jsonb(schema: str, events: list[dict[str, Any]]) -> None:
    where = f"table_schema = '{schema}' and table_name = 'ticket_events'"
    columns = psql(f"select column_name, udt_name from information_schema.columns where {where}")
    types = dict(line.split("|") for line in columns.splitlines())
    assert types["via"] == "text"  # a display string; an object arrives as its JSON text
    assert types["system"] == "jsonb"
    assert types["child_events"] == "_jsonb"  # jsonb[]: one jsonb per child event
    sample = next(e for e in events if isinstance(e.get("via"), dict))
    landed = psql(f'select via, system, to_jsonb(child_events) from "{schema}".ticket_events where id = {sample["id"]}')
    via, system, children = (json.loads(part) for part in landed.split("|"))
    assert via == sample["via"]  # the text column holds the object's JSON text
    assert system == sample["system"]
    assert [c["id"] for c in children] == [c["id"] for c in sample["child_events"]]
    comments = psql(f"select count(*) from \"{schema}\".ticket_events, unnest(child_events) c where c ? 'body'")
    assert int(comments) > 0, "include_comment_events=true from the environment did not reach the tap"


@pytest.mark.postgres
@pytest.mark.meltano
@pytest.mark.target
def test_meltano_run_into_postgres_then_resume_from_saved_state(tmp_path: Path, pg_schema: str) -> None:
    """Two runs, as a schedule makes them; between them new events, and Zendesk erases a card
    number from nine comments and three passport scans (docs/redactions.md)."""
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=NOT_COPIED)
    select_derived_streams(project)
    sim = Simulator()
    first = make_recorded_events(1500, start=1_700_000_000, seed=31)
    for event in first[::150]:  # the ticket the documentation's query asks for (docs/meltano.md)
        event["ticket_id"] = DOCUMENTED_TICKET
    planted = plant(first)
    sim.set_events(first)
    server = SimulatorServer(sim).start()
    try:
        env = meltano_env(sim.url, pg_schema)
        meltano(project, env, "install", timeout=600)

        meltano(project, env, "run", "tap-zendesk-ticket-events", "target-postgres")
        assert_one_row_per_event(pg_schema, first)
        bookmark = saved_bookmark(project, env)
        assert bookmark == max(event_second(e) for e in first)
        loaded = rows_holding(pg_schema, CARD)
        assert loaded["ticket_comments"] == loaded["ticket_events"] == len(planted.comment_ids)
        assert rows_holding(pg_schema, PASSPORT)["ticket_comments"] == len(planted.attachments)

        # New events, the first of them in the bookmark's own second: the second run must ask
        # for exactly that second on, catch them all, and upsert the re-read ones. Among them,
        # the redactions of what the first run loaded.
        second = make_recorded_events(500, start=bookmark, first_id=max(e["id"] for e in first) + 11, seed=32)
        sim.add_events(second)
        for n, comment_id in enumerate(planted.comment_ids):
            sim.redact_comment(comment_id, CARD, at=bookmark + 100 + n)
        for n, attachment_id in enumerate(planted.attachments):
            sim.redact_attachment(attachment_id, at=bookmark + 200 + n)
        seen, listed = len(sim.export_requests()), len(sim.comment_requests())
        meltano(project, env, "run", "tap-zendesk-ticket-events", "target-postgres")
        resumed = sim.export_requests()[seen:]
        assert resumed, "the second run sent no request"
        assert resumed[0].params["start_time"] == str(bookmark)
        assert_one_row_per_event(pg_schema, sim.events)  # the redactions' own audits too
        assert saved_bookmark(project, env) == max(event_second(e) for e in sim.events)

        assert_nested_fields_are_jsonb(pg_schema, first + second)
        assert_derived_tables(pg_schema, first + second)
        assert_readme_questions_answer_right(pg_schema, first + second)
        assert_ticket_changes_query_answers_right(pg_schema, first + second)
        assert_no_erased_content(pg_schema, planted, sim, rereads=resumed, listed=sim.comment_requests()[listed:])
    finally:
        server.stop()


def rows_holding(schema: str, text: str) -> dict[str, int]:
    """Rows of every table of the schema with ``text`` anywhere in them (each row as text)."""
    tables = psql(f"select table_name from information_schema.tables where table_schema = '{schema}'").split()
    assert tables, f"the schema {schema} has no table"
    return {
        table: int(psql(f'select count(*) from "{schema}"."{table}" as r where r::text like \'%{text}%\''))
        for table in tables
    }


def assert_no_erased_content(
    schema: str, planted: Planted, sim: Simulator, *, rereads: list[Request], listed: list[Request]
) -> None:
    """No table of the schema holds what Zendesk erased; what it cost, per redaction."""
    for text in (CARD, PASSPORT):
        assert set(rows_holding(schema, text).values()) == {0}, f"{text!r} is still in the warehouse"
    assert rows_holding(schema, PHONE)["ticket_comments"] == len(planted.comment_ids)  # the rest of the text stays
    count = len(planted.comment_ids) + len(planted.attachments)
    assert psql(f'select count(*), count(*) filter (where rewritten) from "{schema}".ticket_redactions') == (
        f"{count}|{count}"
    )
    # One comments list per ticket, one export request per second of the audits that carried them.
    audits = set(planted.events_of.values())
    assert len(listed) == len(planted.tickets)
    seconds = {event_second(e) for e in sim.events if e["id"] in audits}
    assert len([r for r in rereads if r.params.get("per_page") == "1"]) == len(seconds)


@pytest.mark.meltano
@pytest.mark.target
def test_the_meltano_path_on_the_simulator_as_written(tmp_path: Path) -> None:
    """docs/meltano.md's recipe: the simulator started as written, its .env lines added to .env.example's.

    The lines the documentation shows are the ones the simulator prints (on the test's own port),
    and ``.env.example`` does not trip them (``subdomain`` and ``api_url`` both set).
    """
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=NOT_COPIED)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = shlex.split(readme_block("meltano-simulator").replace("--port 8080", f"--port {port}"))
    assert argv[0] == ".venv/bin/python"
    simulator = subprocess.Popen([sys.executable, *argv[1:]], cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert simulator.stdout is not None
        printed: list[str] = []
        for line in simulator.stdout:
            if printed and not line.startswith("TAP_ZENDESK_TICKET_EVENTS_"):
                break
            if line.startswith(DOTENV_HEADER) or printed:
                printed.append(line.rstrip("\n"))
        recipe = readme_block("meltano-simulator-run")
        documented = [line for line in recipe.splitlines() if line.startswith("TAP_ZENDESK_TICKET_EVENTS_")]
        assert documented == [line.replace(f":{port}", ":8080") for line in printed[1:]]
        env = meltano_base_env()
        env["PATH"] = os.pathsep.join([str(MELTANO.parent), env.get("PATH", "")])
        meltano(project, env, "install", "tap-zendesk-ticket-events", "target-jsonl", timeout=600)
        proc = run_command(["bash", "-e", "-c", recipe.replace(":8080", f":{port}")], cwd=project, env=env)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        if simulator.stdout is not None:
            simulator.stdout.close()
    assert_no_secret(proc.stdout, proc.stderr)
    assert proc.returncode == 0, summary(proc.stderr)
    landed = (project / "output" / "ticket_events.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in landed) == sorted(e["id"] for e in make_events(5000))


def select_derived_streams(project: Path) -> None:
    """Select the derived streams too, as the comment in meltano.yml shows a user."""
    path = project / "meltano.yml"
    text = path.read_text()
    for stream in ("ticket_field_history", "ticket_comments", "ticket_redactions"):
        assert f"    # - {stream}.*\n" in text, f"meltano.yml no longer shows how to select {stream}"
        text = text.replace(f"    # - {stream}.*\n", f"    - {stream}.*\n")
    path.write_text(text)


def assert_derived_tables(schema: str, events: list[dict[str, Any]]) -> None:
    """One row per derived key, with the values the simulator's events imply."""
    history = expected_history(events)
    rows = psql(f'select id, value, previous_value from "{schema}".ticket_field_history').splitlines()
    landed = {line.split("|")[0]: line for line in rows}
    assert len(rows) == len(landed) == len(history), "a field change has no row, or more than one"
    for key, row in history.items():
        assert landed[key] == "|".join([key, row["value"] or "", row["previous_value"] or ""])
    comments = expected_comments(events)
    ids = [int(i) for i in psql(f'select id from "{schema}".ticket_comments').split()]
    assert sorted(ids) == sorted(comments)


#: The ticket id the documentation's query of one ticket's changes names (docs/meltano.md).
DOCUMENTED_TICKET = 12345


def assert_ticket_changes_query_answers_right(schema: str, events: list[dict[str, Any]]) -> None:
    """The query of one ticket's changes, as written but in the test's schema: every child event of it."""
    sql = marked_block("ticket-changes")
    assert "from zendesk.ticket_events" in sql
    assert f"e.ticket_id = {DOCUMENTED_TICKET}" in sql
    got = psql(sql.replace("from zendesk.", f'from "{schema}".')).splitlines()
    expected = sorted(
        f"{e['id']}|{c.get('event_type') or ''}"
        for e in events
        if e.get("ticket_id") == DOCUMENTED_TICKET
        for c in e.get("child_events", [])
    )
    assert expected, f"the test data holds no event of ticket {DOCUMENTED_TICKET}: the query would answer nothing"
    assert sorted("|".join(row.split("|")[0:3:2]) for row in got) == expected


def test_every_sql_query_of_the_documentation_is_run_by_a_test() -> None:
    """Each SQL block is a named question or a marked block that the end-to-end test runs on its data.

    A query that no test runs may answer nothing on any data (a field the simulator never sends,
    a ticket that does not exist) and nobody would know.
    """
    tested = {
        marked_block("ticket-changes"),
        *(f"-- question: {name}\n{sql}" for name, sql in readme_questions().items()),
    }
    for name in pages():
        blocks = re.findall(r"```sql\n(.*?)```", name.read_text(encoding="utf-8"), flags=re.DOTALL)
        for block in blocks:
            assert block in tested, f"{name.name}: a SQL query no test runs:\n{block}"


def readme_questions() -> dict[str, str]:
    """The "Questions you can answer" queries (docs/queries.md), by name."""
    text = page("docs/queries.md")
    return dict(re.findall(r"```sql\n-- question: ([\w-]+)\n(.*?)```", text, flags=re.DOTALL))


def epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def answers(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What each README question must answer, worked out from the events the simulator served."""
    history = sorted(expected_history(events).values(), key=lambda r: (r["changed_at"], r["event_id"], r["id"]))
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for row in history:
        by_ticket.setdefault(row["ticket_id"], []).append(row)
    in_status: dict[tuple[int, str], int] = {}
    latest: dict[int, str] = {}
    raised = []
    order = ["low", "normal", "high", "urgent"]
    for ticket, rows in by_ticket.items():
        statuses = [r for r in rows if r["field"] == "status"]
        for now, after in itertools.pairwise(statuses):
            key = (ticket, now["value"])
            in_status[key] = in_status.get(key, 0) + epoch(after["changed_at"]) - epoch(now["changed_at"])
        custom = [r for r in rows if r["field"] == "custom_field_360041597112"]
        if custom:
            latest[ticket] = custom[-1]["value"] or ""
        for r in rows:
            rank = order.index(r["value"]) + 1 if r["value"] in order else None
            before = order.index(r["previous_value"]) + 1 if r["previous_value"] in order else 0
            if r["field"] == "priority" and r["change_type"] == "Change" and rank is not None and rank > before:
                raised.append(r)
    comments = sorted(expected_comments(events).values(), key=lambda c: (c["created_at"], c["id"]))
    opener: dict[int, int] = {}
    replies: dict[int, dict[str, Any]] = {}
    for c in comments:
        opener.setdefault(c["ticket_id"], c["author_id"])
        if c["public"] and c["author_id"] != opener[c["ticket_id"]]:
            replies.setdefault(c["ticket_id"], c)
    return {
        "time-in-status": sorted(f"{t}|{s}|{n}" for (t, s), n in in_status.items()),
        "latest-custom-field": sorted(f"{t}|{v}" for t, v in latest.items()),
        "priority-raised": sorted(
            f"{r['ticket_id']}|{r['updater_id']}|{r['changed_at'].replace('T', ' ').rstrip('Z')}|"
            f"{r['previous_value'] or ''}|{r['value']}"
            for r in raised
        ),
        "first-public-reply": sorted(
            f"{c['ticket_id']}|{c['id']}|{c['author_id']}|{c['created_at'].replace('T', ' ').rstrip('Z')}"
            for c in replies.values()
        ),
    }


def assert_readme_questions_answer_right(schema: str, events: list[dict[str, Any]]) -> None:
    questions = readme_questions()
    expected = answers(events)
    assert set(questions) == set(expected), "the README's questions changed: update answers()"
    for name, sql in questions.items():
        got = psql(f'set search_path to "{schema}"; {sql}').splitlines()
        assert expected[name], f"the test data gives question {name!r} nothing to find"
        assert sorted(got) == expected[name], f"README question {name!r} answered wrong"


def meltano_yml_plugin(name: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = [p for kind in project["plugins"].values() for p in kind]
    plugin: dict[str, Any] = next(p for p in plugins if p["name"] == name)
    return plugin


def test_meltano_yml_declares_every_setting_and_capability_of_the_tap() -> None:
    """Meltano passes only declared settings, cast by their kind: a missing one cannot be set."""
    assert_declares_the_tap(meltano_yml_plugin("tap-zendesk-ticket-events"))


def test_readme_snippet_for_an_existing_project_declares_every_setting_and_capability() -> None:
    assert_declares_the_tap(readme_snippet_tap())


@functools.cache
def about_json() -> str:
    """The tap's ``--about`` (one subprocess for every test that compares a declaration with it)."""
    return tap_output("--about", "--format=json")


def assert_declares_the_tap(tap: dict[str, Any]) -> None:
    about = json.loads(about_json())
    declared = {s["name"]: s for s in tap["settings"]}
    kinds = {"string": "string", "integer": "integer", "boolean": "boolean", "object": "object", "array": "array"}
    for name, prop in about["settings"]["properties"].items():
        assert name in declared, f"meltano.yml does not declare the tap's setting {name!r}"
        json_type = next(t for t in ([prop["type"]] if isinstance(prop["type"], str) else prop["type"]) if t != "null")
        kind = "date_iso8601" if prop.get("format") == "date-time" else kinds[json_type]
        if "enum" in prop:  # Meltano's kind for a closed list: its options must be the schema's values
            kind = "options"
            assert [o["value"] for o in declared[name]["options"]] == prop["enum"], name
        assert declared[name].get("kind") == kind, name
        assert declared[name].get("sensitive", False) == bool(prop.get("secret")), name
    assert set(tap["capabilities"]) == set(about["capabilities"])
    assert tap["select"] == ["ticket_events.*"]


def test_env_example_lists_every_setting_of_every_plugin() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in ("tap-zendesk-ticket-events", "target-postgres", "target-jsonl"):
        prefix = name.upper().replace("-", "_")
        for setting in meltano_yml_plugin(name)["settings"]:
            variable = f"{prefix}_{re.sub(r'[^A-Za-z0-9]+', '_', setting['name']).upper()}="
            assert variable in example, f".env.example does not list {variable}"


def test_meltano_yml_holds_no_secret() -> None:
    text = (ROOT / "meltano.yml").read_text()
    assert_no_secret(text)
    for name in ("tap-zendesk-ticket-events", "target-postgres", "target-jsonl"):
        plugin = meltano_yml_plugin(name)
        secrets = {s["name"] for s in plugin["settings"] if s.get("sensitive")}
        assert not secrets & set(plugin.get("config", {})), f"a secret of {name} is set in meltano.yml"


CLONE_PLACEHOLDER = "/path/to/tap-zendesk-ticket-events"


def readme_snippet_tap() -> dict[str, Any]:
    """The tap as the README's "In an existing Meltano project" snippet declares it."""
    snippet = yaml.safe_load(readme_block("existing-project"))
    (tap,) = snippet["plugins"]["extractors"]
    assert tap["pip_url"] == CLONE_PLACEHOLDER
    assert isinstance(tap, dict)
    return tap


@pytest.mark.meltano
@pytest.mark.target
def test_readme_snippet_adds_the_tap_to_a_fresh_meltano_project(tmp_path: Path) -> None:
    """The README's snippet and commands, in a project made by `meltano init` outside this repo.

    The snippet's pip_url is the path form, pointing at this clone (no network for a Git URL);
    target-jsonl stands for the project's own loader, declared as this repo's meltano.yml does.
    """
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    sim = Simulator()
    events = make_events(1_200, seed=51)
    sim.set_events(events)
    sim.set_metric_events(make_metric_events(300))
    server = SimulatorServer(sim).start()
    env = meltano_base_env()
    env.update(
        {
            "PATH": os.pathsep.join([str(MELTANO.parent), env.get("PATH", "")]),
            "TAP_ZENDESK_TICKET_EVENTS_API_URL": server.url,
            "TAP_ZENDESK_TICKET_EVENTS_EMAIL": EMAIL,
            "TAP_ZENDESK_TICKET_EVENTS_API_TOKEN": API_TOKEN,
            "TAP_ZENDESK_TICKET_EVENTS_START_DATE": START_DATE,
            "TAP_ZENDESK_TICKET_EVENTS_MAX_REQUESTS_PER_MINUTE": "10000",
        }
    )
    try:
        meltano(tmp_path, env, "init", "elsewhere")
        project = tmp_path / "elsewhere"
        config_file = project / "meltano.yml"
        config = yaml.safe_load(config_file.read_text())
        snippet = yaml.safe_load(readme_block("existing-project").replace(CLONE_PLACEHOLDER, str(ROOT)))
        target_jsonl = meltano_yml_plugin("target-jsonl")
        config.setdefault("plugins", {}).update(snippet["plugins"])
        config["plugins"]["loaders"] = [target_jsonl]  # the project's own loader
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        meltano(project, env, "install", "target-jsonl")

        proc = run_command(["bash", "-e", "-c", readme_block("existing-project-commands")], cwd=project, env=env)
    finally:
        server.stop()
    assert_no_secret(proc.stdout, proc.stderr)
    assert proc.returncode == 0, summary(proc.stderr)
    landed = (project / "output" / "ticket_events.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in landed) == sorted(e["id"] for e in events)
    # Only the stream the snippet selects: the optional one sends no request.
    assert not (project / "output" / "ticket_metric_events.jsonl").exists()
    assert sim.export_requests("ticket_metric_events") == []
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state["singer_state"]["bookmarks"]["ticket_events"]["replication_key_value"] == max(
        e["timestamp"] for e in events
    )


def test_readme_state_commands_name_the_state_id_meltano_run_keeps() -> None:
    """The README's state commands use the id the end-to-end test reads after `meltano run` in dev."""
    section = docs_section("docs/meltano.md", "Environments and state")
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"\b(\w+:tap-zendesk-ticket-events-to-[\w-]+)", block))
    assert named == {STATE_ID}
    assert "--environment" not in block  # the run it follows used the default environment


def test_dev_and_prod_load_into_schemas_of_their_own(tmp_path: Path) -> None:
    """A try-out in dev (the default environment) must not write to production's tables.

    What Meltano itself resolves for target-postgres, from meltano.yml alone (nothing from the
    shell), for each command docs/meltano.md shows, each in a directory of its own (all at once,
    to be quick); the schema each prints is the one its comment names. The plain
    ``meltano config print`` ignores the default environment: it prints production's schema.
    """
    if not MELTANO.exists():
        unavailable(f"{MELTANO} is missing: run `python3 tasks.py setup`")
    documented, procs = {}, {}
    for i, line in enumerate(readme_block("schemas").splitlines()):
        command, comment = line.split("#", 1)
        args = command.split()[1:]  # after `meltano`
        documented[" ".join(args)] = re.findall(r'"default_target_schema": "(\w+)"', comment)[0]
        project = tmp_path / str(i)
        project.mkdir()
        shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
        procs[" ".join(args)] = subprocess.Popen(
            [str(MELTANO), *args],
            cwd=project,
            env=meltano_base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    schemas, logs = {}, {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"meltano {name} failed:\n{summary(err)}"
        schemas[name], logs[name] = json.loads(out)["default_target_schema"], err
    assert schemas == documented
    assert documented == {
        "--environment=dev config print target-postgres": "zendesk_dev",
        "--environment=prod config print target-postgres": "zendesk",
        "config print target-postgres": "zendesk",
    }
    assert "The default environment 'dev' will be ignored for `meltano config`" in logs["config print target-postgres"]
