"""Invalid configurations are refused before any request, with one line naming the setting."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import START_DATE, make_config
from tests.runners import run_tap, run_tap_in_process, tap_output
from zendesk_simulator import API_TOKEN, EMAIL, Simulator, make_events

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no auth", {"email": None, "api_token": None}, "No auth configured"),
    ("both auth methods", {"access_token": "tok"}, "exactly one auth method"),
    ("token without email", {"email": None}, "'email'"),
    ("bad subdomain", {"api_url": None, "subdomain": "acme.evil.com/x"}, "subdomain"),
    ("no subdomain nor api_url", {"api_url": None}, "'subdomain'"),
    ("plain http to a remote host", {"api_url": "http://acme.zendesk.com"}, "'api_url'"),
    ("api_url that is no URL", {"api_url": "acme"}, "'api_url'"),
    ("missing start_date", {"start_date": None}, "start_date"),
    ("unparsable start_date", {"start_date": "yesterday"}, "'start_date'"),
    ("unparsable end_date", {"end_date": "2024-13-45"}, "'end_date'"),
    ("end_date before start_date", {"end_date": "2020-01-01T00:00:00Z"}, "'end_date'"),
    ("page_size too large", {"page_size": 1001}, "page_size"),
    ("page_size zero", {"page_size": 0}, "page_size"),
    ("zero request budget", {"max_requests_per_minute": 0}, "max_requests_per_minute"),
    # OAuth refresh: the three settings together, and no other auth method beside them.
    (
        "refresh_token without client_secret",
        {"email": None, "api_token": None, "refresh_token": "rt", "client_id": "cid"},
        "Setting 'client_secret' is required",
    ),
    # OAuth client credentials: client_id and client_secret together, nothing beside them.
    (
        "client_id without client_secret",
        {"email": None, "api_token": None, "client_id": "cid"},
        "Setting 'client_secret' is required with 'client_id'",
    ),
    (
        "client credentials with an access token",
        {"email": None, "api_token": None, "client_id": "cid", "client_secret": "cs", "access_token": "at"},
        "'access_token' would never be used",
    ),
    (
        "client credentials with an API token",
        {"client_id": "cid", "client_secret": "cs"},
        "More than one auth method",
    ),
    (
        "scopes that are no scopes",
        {"email": None, "api_token": None, "client_id": "c", "client_secret": "s", "oauth_scopes": "tickets,read"},
        "Setting 'oauth_scopes' must be OAuth scopes separated by spaces",
    ),
    (
        "scopes without the one the exports need",
        {"email": None, "api_token": None, "client_id": "c", "client_secret": "s", "oauth_scopes": "users:read"},
        "Setting 'oauth_scopes' lacks 'tickets:read'",
    ),
    (
        "OAuth refresh with an API token",
        {"refresh_token": "rt", "client_id": "cid", "client_secret": "cs"},
        "More than one auth method",
    ),
    (
        "token store that is a directory",
        {
            "email": None,
            "api_token": None,
            "refresh_token": "rt",
            "client_id": "c",
            "client_secret": "s",
            "oauth_token_store": "/",
        },
        "'oauth_token_store'",
    ),
]


@pytest.mark.parametrize(("overrides", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_is_refused_in_one_line(
    sim: Simulator, tmp_path: Path, overrides: dict[str, Any], named: str
) -> None:
    sim.set_events(make_events(5))
    config = make_config(sim, **overrides)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)

    run = run_tap_in_process(tmp_path, config)  # no wait and no connection first: see below

    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert named in errors[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert sim.requests == []


@pytest.mark.parametrize(("overrides", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_is_refused_before_any_wait_or_connection(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], named: str
) -> None:
    """The tap refuses the configuration when it is made: no sleep, no socket opened anywhere."""
    config = make_config(sim, **overrides)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
    waited: list[float] = []
    connected: list[object] = []

    def no_connection(_sock: socket.socket, address: object) -> None:
        connected.append(address)
        raise OSError("no connection in this test")

    monkeypatch.setattr(time, "sleep", waited.append)
    monkeypatch.setattr(socket.socket, "connect", no_connection)

    with pytest.raises((ConfigValidationError, TapError)) as refused:
        TapZendeskTicketEvents(config=config)

    assert named in str(refused.value) + " ".join(str(e) for e in getattr(refused.value, "errors", []))
    assert waited == []
    assert connected == []


def test_config_from_environment(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(25))
    env = {
        "TAP_ZENDESK_TICKET_EVENTS_API_URL": sim.url,
        "TAP_ZENDESK_TICKET_EVENTS_EMAIL": EMAIL,
        "TAP_ZENDESK_TICKET_EVENTS_API_TOKEN": API_TOKEN,
        "TAP_ZENDESK_TICKET_EVENTS_START_DATE": START_DATE,
        "TAP_ZENDESK_TICKET_EVENTS_PAGE_SIZE": "10",
    }
    proc = run_tap(tmp_path, extra_args=("--config", "ENV"), env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('"type":"RECORD"') == 25
    assert {r.params["per_page"] for r in sim.export_requests()} == {"10"}


def test_about_lists_every_setting_and_marks_secrets() -> None:
    about = json.loads(tap_output("--about", "--format=json"))
    properties = about["settings"]["properties"]
    for name in (
        "subdomain",
        "api_url",
        "email",
        "api_token",
        "access_token",
        "start_date",
        "end_date",
        "include_comment_events",
        "page_size",
        "max_requests_per_minute",
        "request_timeout",
    ):
        assert name in properties
    assert properties["api_token"].get("secret") is True
    assert properties["access_token"].get("secret") is True
    for name in ("refresh_token", "client_id", "client_secret"):
        assert properties[name].get("secret") is True, name
    # A PostgreSQL URL may hold the database's password (logs show the store without it).
    assert properties["oauth_token_store"].get("secret") is True
    assert about["settings"]["required"] == ["start_date"]


def test_discovery_needs_no_config_and_no_network() -> None:
    proc = run_tap(None, extra_args=("--discover",), timeout=60)
    assert proc.returncode == 0, proc.stderr
    catalog = json.loads(proc.stdout)
    streams = {stream["tap_stream_id"]: stream for stream in catalog["streams"]}
    assert set(streams) == {
        "ticket_events",
        "ticket_metric_events",
        "ticket_field_history",
        "ticket_comments",
        "ticket_redactions",
    }
    for name in ("ticket_events", "ticket_metric_events"):
        assert streams[name]["replication_key"] == "end_time"
    for stream in streams.values():
        assert stream["key_properties"] == ["id"]
