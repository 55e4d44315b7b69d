"""Which tickets are exported: ``support_type_scope``, sent, remembered in STATE, and explained."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_zendesk_ticket_events import scope
from tap_zendesk_ticket_events.errors import ConfigError
from tap_zendesk_ticket_events.settings import Settings
from tests.conftest import iso, make_config
from tests.runners import TapRun, catalog_selecting, run_tap, sync_in_process
from zendesk_simulator import Simulator, make_events, make_metric_events, pick_ai_agent_tickets

START = 1_700_000_000
BOOKMARK_STREAM = "ticket_events"


@pytest.fixture
def ai_sim(sim: Simulator) -> tuple[Simulator, list[dict[str, Any]], set[Any]]:
    """600 events, a fifth of whose tickets an AI agent handled alone; and the ids of those tickets' events."""
    events = make_events(600, start=START, seed=17)
    tickets = pick_ai_agent_tickets(events, 0.2, seed=3)
    sim.set_ai_agent_tickets(tickets)
    sim.set_events(events)
    ai_ids = {e["id"] for e in events if e["ticket_id"] in tickets}
    assert 50 < len(ai_ids) < 250
    return sim, events, ai_ids


def scopes_sent(sim: Simulator, kind: str = "ticket_events") -> set[str | None]:
    return {r.params.get("support_type_scope") for r in sim.export_requests(kind)}


def bookmark_entry(run: TapRun) -> dict[str, Any]:
    entry: dict[str, Any] = run.states[-1]["bookmarks"][BOOKMARK_STREAM]
    return entry


def test_default_exports_every_ticket_ai_agent_ones_included(
    ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    sim, events, ai_ids = ai_sim

    with caplog.at_level(logging.INFO):
        run = sync_in_process(make_config(sim, page_size=100))

    assert run.returncode == 0, run.stderr
    assert sorted(run.ids) == sorted(e["id"] for e in events)
    assert ai_ids <= set(run.ids)
    assert scopes_sent(sim) == {"all"}
    assert bookmark_entry(run)[scope.STATE_KEY] == "all"
    start_line = next(m for m in caplog.messages if "exporting from" in m)
    assert "tickets: every ticket, AI-agent tickets included (support_type_scope=all)" in start_line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "support_type_scope" in r.message]


@pytest.mark.parametrize(("value", "expect_ai"), [("agent", False), ("ai_agent", True)])
def test_agent_leaves_ai_agent_tickets_out_and_ai_agent_keeps_only_them(
    ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]], value: str, expect_ai: bool
) -> None:
    sim, events, ai_ids = ai_sim

    run = sync_in_process(make_config(sim, page_size=100, support_type_scope=value))

    assert run.returncode == 0, run.stderr
    expected = {e["id"] for e in events if (e["id"] in ai_ids) == expect_ai}
    assert sorted(run.ids) == sorted(expected)
    assert scopes_sent(sim) == {value}
    assert bookmark_entry(run)[scope.STATE_KEY] == value


def test_metric_events_requests_carry_no_scope(ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]]) -> None:
    sim, _, _ = ai_sim
    sim.set_metric_events(make_metric_events(120, start=START))
    config = make_config(sim, page_size=50)
    catalog = catalog_selecting(config, "ticket_events", "ticket_metric_events")

    run = sync_in_process(config, catalog=catalog)

    assert run.returncode == 0, run.stderr
    assert len(run.records_of("ticket_metric_events")) == 120
    assert sim.export_requests("ticket_metric_events")
    assert scopes_sent(sim, "ticket_metric_events") == {None}
    assert scopes_sent(sim) == {"all"}
    assert scope.STATE_KEY not in run.states[-1]["bookmarks"]["ticket_metric_events"]


def test_a_bookmark_from_before_the_setting_warns_once_and_the_backfill_it_names_fills_the_gap(
    ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """The upgrade path: a state written before the setting existed was made with Zendesk's default."""
    sim, events, ai_ids = ai_sim
    seconds = sorted(e["timestamp"] for e in events)
    middle = seconds[len(seconds) // 2]
    # What the tap exported before this change: agent tickets only, up to the middle; its
    # state has no scope key.
    before = sync_in_process(make_config(sim, page_size=100, end_date=iso(middle), support_type_scope="agent"))
    assert before.returncode == 0, before.stderr
    old_state = before.states[-1]
    del old_state["bookmarks"][BOOKMARK_STREAM][scope.STATE_KEY]
    old_bookmark = old_state["bookmarks"][BOOKMARK_STREAM]["replication_key_value"]

    with caplog.at_level(logging.INFO):
        upgraded = sync_in_process(make_config(sim, page_size=100), state=old_state)

    assert upgraded.returncode == 0, upgraded.stderr
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING and "support_type_scope" in r.message]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert "'all'" in warning
    assert "'agent'" in warning
    assert "AI-agent tickets" in warning
    assert f"end_date={iso(old_bookmark)}" in warning
    assert "support_type_scope='ai_agent'" in warning
    assert bookmark_entry(upgraded)[scope.STATE_KEY] == "all"
    # Everything after the old bookmark came, AI-agent tickets included.
    after = {e["id"] for e in events if e["timestamp"] >= old_bookmark}
    assert after <= set(upgraded.ids)

    # The backfill the warning names: AI-agent tickets up to the old bookmark, without state.
    backfill = sync_in_process(
        make_config(sim, page_size=100, support_type_scope="ai_agent", end_date=iso(old_bookmark))
    )
    assert backfill.returncode == 0, backfill.stderr
    assert set(before.ids) | set(upgraded.ids) | set(backfill.ids) == {e["id"] for e in events}
    assert ai_ids & {e["id"] for e in events if e["timestamp"] < old_bookmark} <= set(backfill.ids)

    # The next scheduled run says nothing more.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = sync_in_process(make_config(sim, page_size=100), state=upgraded.states[-1])
    assert again.returncode == 0, again.stderr
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and "support_type_scope" in r.message]


def test_narrowing_the_scope_says_what_later_runs_leave_out(
    ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    sim, events, ai_ids = ai_sim
    seconds = sorted(e["timestamp"] for e in events)
    first = sync_in_process(make_config(sim, page_size=100, end_date=iso(seconds[300])))
    assert bookmark_entry(first)[scope.STATE_KEY] == "all"

    with caplog.at_level(logging.INFO):
        narrowed = sync_in_process(make_config(sim, page_size=100, support_type_scope="agent"), state=first.states[-1])

    assert narrowed.returncode == 0, narrowed.stderr
    (warning,) = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert "support_type_scope is 'agent' but the bookmark was made with 'all'" in warning
    assert "from now on, events of AI-agent tickets are no longer exported" in warning
    assert "backfill" not in warning  # the history lacks nothing
    assert not ai_ids & set(narrowed.ids)
    assert bookmark_entry(narrowed)[scope.STATE_KEY] == "agent"


def test_an_unknown_scope_is_refused_before_any_request(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))

    run = run_tap(tmp_path, make_config(sim, support_type_scope="everything"))

    assert run.returncode == 1
    errors = run.error_lines
    assert len(errors) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "support_type_scope" in errors[0]
    for value in ("'all'", "'agent'", "'ai_agent'"):
        assert value in errors[0]
    assert sim.requests == []


def test_settings_refuse_an_unknown_scope_given_in_code() -> None:
    """The check holds without the SDK's JSON Schema validation too (a config built in code)."""
    config = {"subdomain": "acme", "email": "a@b.c", "api_token": "x", "start_date": "2024-01-01"}
    with pytest.raises(ConfigError, match=r"^Setting 'support_type_scope' must be one of 'all', 'agent', 'ai_agent'"):
        Settings.from_config({**config, "support_type_scope": "AGENT"})
    assert Settings.from_config(config).support_type_scope == "all"


def test_the_simulator_refuses_an_unknown_scope_and_defaults_to_agent(
    ai_sim: tuple[Simulator, list[dict[str, Any]], set[Any]],
) -> None:
    """The simulator's own rules, which the tests above lean on."""
    sim, events, ai_ids = ai_sim
    url = f"{sim.url}/api/v2/incremental/ticket_events.json"
    auth = ("admin@example.com/token", sim.api_token)
    refused = requests.get(url, params={"start_time": str(START), "support_type_scope": "bots"}, auth=auth, timeout=10)
    assert refused.status_code == 400
    default = requests.get(url, params={"start_time": START}, auth=auth, timeout=10).json()["ticket_events"]
    assert not {e["id"] for e in default} & ai_ids
    everything = requests.get(
        url, params={"start_time": str(START), "support_type_scope": "all"}, auth=auth, timeout=10
    )
    assert len(everything.json()["ticket_events"]) == len(events)


@pytest.mark.parametrize(
    ("before", "now", "says", "never_says"),
    [
        (None, "all", None, None),
        ("all", "all", None, None),
        ("agent", "all", ["AI-agent tickets before the bookmark", "support_type_scope='ai_agent'"], "from now on"),
        ("ai_agent", "all", ["agent tickets before the bookmark", "support_type_scope='agent'"], "from now on"),
        ("all", "ai_agent", ["from now on, events of agent tickets"], "backfill"),
        ("agent", "ai_agent", ["AI-agent tickets before", "from now on, events of agent tickets"], None),
    ],
)
def test_change_warning_rules(before: Any, now: Any, says: list[str] | None, never_says: str | None) -> None:
    warning = scope.change_warning(before, now, "2024-01-01T00:00:00Z")
    if says is None:
        assert warning is None
        return
    assert warning is not None
    assert warning.startswith(f"support_type_scope is {now!r} but the bookmark was made with {before!r}")
    assert "\n" not in warning
    for text in says:
        assert text in warning
    if never_says:
        assert never_says not in warning


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, None),
        ({"replication_key_value": 1_700_000_000}, "agent"),
        ({"replication_key_value": 1_700_000_000, "support_type_scope": "all"}, "all"),
        ({"replication_key_value": 1_700_000_000, "support_type_scope": "bogus"}, "agent"),
    ],
)
def test_bookmark_scope_of_old_and_new_states(state: dict[str, object], expected: str | None) -> None:
    assert scope.bookmark_scope(state) == expected
