"""OAuth with rotating refresh tokens: long backfills and scheduled runs with nobody around.

Every test runs the real tap (a subprocess, as Meltano or cron would, unless it must replace
backoff's clock) against the simulator's ``/oauth/tokens``, which rotates the pair on each
refresh exactly as Zendesk does: a tap that loses one rotated refresh token fails for good.
Every run is checked for leaked secrets: every token the simulator ever issued, the client
secret, in stdout (STATE included), stderr, and every file but the token store.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import zendesk_simulator
from tap_zendesk_ticket_events import auth as auth_module
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import START_DATE
from tests.runners import TapRun, assert_no_oauth_secret, run_tap, start_tap, sync_in_process, token_requests
from tests.virtual_clock import VirtualClock
from zendesk_simulator import OAUTH_TOKEN_PATH, Request, Simulator, make_events

STORE_NAME = "oauth-token.json"


# --- helpers --------------------------------------------------------------------------


def oauth_config(sim: Simulator, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """OAuth refresh settings with a freshly granted refresh token and a store in tmp_path."""
    config: dict[str, Any] = {
        "api_url": sim.url,
        "refresh_token": sim.oauth.issue_tokens()[1],
        "client_id": sim.oauth.client_id,
        "client_secret": sim.oauth.client_secret,
        "oauth_token_store": str(tmp_path / "store" / STORE_NAME),
        "start_date": START_DATE,
        "max_requests_per_minute": 10_000,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def api_requests(sim: Simulator) -> list[Request]:
    return [r for r in sim.requests if r.path != OAUTH_TOKEN_PATH]


def refreshed_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if "Refreshed the OAuth access token" in line]


def stored(config: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(config["oauth_token_store"]).read_text())
    return data


# --- long backfills -------------------------------------------------------------------


def test_backfill_over_several_token_lifetimes_refreshes_before_expiry(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In process, on one virtual clock for the tap's auth and the simulator: a page takes
    0.375 s of it and nothing else moves it, so when each token is used is exact."""
    clock = VirtualClock()
    clock.install(monkeypatch, auth_module, *zendesk_simulator.CLOCKED)
    events = make_events(4_000)
    sim.set_events(events)
    sim.latency = 0.375  # 16 pages: 6 s, three lifetimes of 2 s
    lifetime = 2.0
    sim.oauth.token_lifetime = lifetime  # and a token dies exactly then
    config = oauth_config(sim, tmp_path, page_size=250)

    with caplog.at_level(logging.INFO):
        run = sync_in_process(config)

    assert run.returncode == 0, run.stderr
    assert_no_oauth_secret(sim, tmp_path, run, TapRun(0, "", caplog.text))
    assert Counter(run.ids) == Counter(e["id"] for e in events)  # every id, exactly once
    tokens = token_requests(sim)
    assert len(tokens) >= 4, "the first token and at least three refreshes mid-run"
    assert all(r.status == 200 for r in tokens)
    # Each token was refreshed before it died: no request was ever refused...
    assert [r.status for r in api_requests(sim) if r.status != 200] == []
    # ...and within the margin: none used in the last tenth of its lifetime (where a slow
    # request or a clock ahead would reach Zendesk with a dead token), none dropped early.
    for refresh, following in itertools.pairwise(tokens):
        issued = refresh.oauth_generation + 1
        used = [r.at - refresh.at for r in api_requests(sim) if r.oauth_generation == issued]
        assert used, f"generation {issued} was never used"
        assert lifetime / 2 <= max(used) < lifetime * 0.9, used
        assert following.at - refresh.at < lifetime
    # Each refresh used the refresh token the previous one returned: rotation was followed.
    assert [r.oauth_generation for r in tokens] == list(range(1, len(tokens) + 1))
    assert caplog.text.count("Refreshed the OAuth access token") == len(tokens)
    assert stored(config)["refresh_token"] in sim.oauth.refresh_tokens  # the live one is kept


def test_401_for_an_expired_token_refreshes_and_retries_the_request_once(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(2_000)
    sim.set_events(events)
    sim.oauth.token_lifetime = 3600  # announced: the tap has no reason to refresh early...
    served: Counter[int] = Counter()

    def die_after_three_requests(request: Request) -> bool:
        # ...but each token dies after three requests, as a revoked or skewed one would.
        # Counted, not timed: the same requests are refused however slow the machine is.
        if served[request.oauth_generation] == 3:
            sim.oauth.expire_access_tokens()
        served[request.oauth_generation] += 1
        return False

    sim.oauth.on_export = die_after_three_requests
    config = oauth_config(sim, tmp_path, page_size=250)

    run = run_tap(tmp_path, config, oauth=sim)

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    requests = sim.requests
    refused = [n for n, r in enumerate(requests) if r.status == 401]
    assert len(refused) >= 2
    for n in refused:
        # The 401 (invalid_token) is followed by one refresh and the same request, answered.
        refresh, again = requests[n + 1], requests[n + 2]
        assert (refresh.path, refresh.status) == (OAUTH_TOKEN_PATH, 200)
        assert (again.path, again.params, again.status) == (requests[n].path, requests[n].params, 200)
        assert again.oauth_generation == refresh.oauth_generation + 1
    assert len(token_requests(sim)) == 1 + len(refused)


def test_a_request_refused_again_after_the_refresh_fails_with_the_401_line(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    sim.oauth.actual_lifetime = 0  # every token Zendesk gives is refused
    config = oauth_config(sim, tmp_path)

    run = run_tap(tmp_path, config, oauth=sim)

    assert run.returncode == 1
    line = run.one_error_line()
    assert "Zendesk refused the credentials (401" in line
    assert "'refresh_token', 'client_id' and 'client_secret'" in line
    # The first token, one request, one refresh, the one retry: then it stops.
    assert [(r.path == OAUTH_TOKEN_PATH, r.status) for r in sim.requests] == [
        (True, 200),
        (False, 401),
        (True, 200),
        (False, 401),
    ]


def test_configured_access_token_is_used_until_it_is_refused(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(300)
    sim.set_events(events)
    access, refresh = sim.oauth.issue_tokens()
    config = oauth_config(sim, tmp_path, access_token=access, refresh_token=refresh, page_size=100)

    run = run_tap(tmp_path, config, oauth=sim)
    assert run.returncode == 0, run.stderr
    assert token_requests(sim) == []  # no refresh while the configured token works
    sim.requests.clear()
    sim.oauth.expire_access_tokens()

    again = run_tap(tmp_path, config, name="again", oauth=sim)

    assert again.returncode == 0, again.stderr
    first_request, refresh_call = sim.requests[:2]
    assert (first_request.status, refresh_call.path, refresh_call.status) == (401, OAUTH_TOKEN_PATH, 200)
    assert Counter(again.ids) == Counter(e["id"] for e in events)


# --- the store: scheduled runs, crashes, concurrency -----------------------------------


def test_scheduled_runs_follow_the_rotation_and_a_new_refresh_token_replaces_the_store(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.set_events(make_events(100))
    config = oauth_config(sim, tmp_path)

    # Run after run with the same settings: each refresh rotates the configured token away,
    # so only the store can carry the next run.
    for n in range(3):
        sim.oauth.expire_access_tokens()
        run = run_tap(tmp_path, config, name=f"scheduled-{n}", oauth=sim)
        assert run.returncode == 0, run.stderr
    assert [r.status for r in token_requests(sim)] == [200, 200, 200]
    store = Path(config["oauth_token_store"])
    assert store.stat().st_mode & 0o777 == 0o600
    assert store.parent.stat().st_mode & 0o777 == 0o700

    # The grant is revoked (or expired): one line that says what to do.
    sim.oauth.refresh_tokens.clear()
    sim.oauth.expire_access_tokens()
    revoked = run_tap(tmp_path, config, name="revoked", oauth=sim)
    assert revoked.returncode == 1
    line = revoked.one_error_line()
    assert "The OAuth refresh token is no longer valid (invalid_grant" in line
    assert "set 'refresh_token'" in line
    assert str(store) in line

    # The user authorizes again and pastes the new refresh token: it replaces the store.
    renewed = dict(config, refresh_token=sim.oauth.issue_tokens()[1])
    fixed = run_tap(tmp_path, renewed, name="renewed", oauth=sim)
    assert fixed.returncode == 0, fixed.stderr
    assert "The configured 'refresh_token' is new" in fixed.stderr

    # A stale copy of the settings (the first refresh token, long rotated away) must not
    # clobber the store: the store knows it started from that token once already.
    sim.oauth.expire_access_tokens()
    stale = run_tap(tmp_path, config, name="stale-settings", oauth=sim)
    assert stale.returncode == 0, stale.stderr
    assert "is new" not in stale.stderr
    assert token_requests(sim)[-1].status == 200


def test_killed_right_after_a_refresh_restarts_with_the_rotated_token(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(3_000)
    sim.set_events(events)
    config = oauth_config(sim, tmp_path, page_size=200)
    tap: list[subprocess.Popen[bytes]] = []
    killed = threading.Event()
    served: Counter[int] = Counter()

    def kill_at_first_use_of_a_refreshed_token(request: Request) -> bool:
        # Generation 1 was granted by the test, 2 by the tap's first refresh, 3 by its
        # first refresh mid-run: the tap is killed the moment it uses that token.
        if request.oauth_generation >= 3 and not killed.is_set():
            tap[0].send_signal(signal.SIGKILL)
            tap[0].wait()
            killed.set()
            return True
        # The mid-run refresh: the first token dies after three pages (counted, not timed:
        # a token that expired on the clock could do so before the first page on a slow
        # machine, and the kill would come before any record).
        if served[request.oauth_generation] == 3:
            sim.oauth.expire_access_tokens()
        served[request.oauth_generation] += 1
        return False

    sim.oauth.on_export = kill_at_first_use_of_a_refreshed_token
    started = start_tap(tmp_path, config, name="killed")
    tap.append(started.proc)
    first = started.finish()
    assert_no_oauth_secret(sim, tmp_path, first)
    assert killed.is_set(), first.stderr
    assert first.returncode == -signal.SIGKILL
    assert 0 < len(first.ids) < len(events)
    assert [r.oauth_generation for r in token_requests(sim)] == [1, 2]

    # The configured refresh token and the first rotated one are dead at Zendesk; the access
    # tokens too. Only the refresh token saved before the kill can start the next run.
    sim.oauth.on_export = None
    sim.oauth.expire_access_tokens()
    sim.requests.clear()
    second = run_tap(tmp_path, config, name="restarted", state=first.states[-1], oauth=sim)

    assert second.returncode == 0, second.stderr
    assert [(r.status, r.oauth_generation) for r in token_requests(sim)] == [(200, 3)]
    assert set(first.ids) | set(second.ids) == {e["id"] for e in events}


def test_concurrent_runs_on_one_store_share_the_token_instead_of_burning_it(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(3_000)
    sim.set_events(events)
    sim.latency = 0.4  # 15 pages each: about 6 s, three lifetimes of 2 s
    lifetime = 2.0
    sim.oauth.token_lifetime = lifetime
    sim.oauth.latency = 0.5  # two runs refreshing at about the same time would overlap
    config = oauth_config(sim, tmp_path, page_size=200)

    started = [start_tap(tmp_path, config, name=name) for name in ("first", "second")]
    runs = [s.finish() for s in started]
    assert_no_oauth_secret(sim, tmp_path, *runs)

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "invalid_grant" not in run.stderr
        assert Counter(run.ids) == Counter(e["id"] for e in events)
    refreshes = token_requests(sim)
    assert all(r.status == 200 for r in refreshes)
    assert len(refreshes) >= 3
    assert sum(len(refreshed_lines(run)) for run in runs) == len(refreshes)
    # One token for both runs: one refresh per lifetime, never two runs refreshing at once
    # (which would delete each other's tokens and double the refreshes). A refresh comes at
    # least 0.9 lifetimes after the one before by design; the mean gap, unlike the smallest,
    # does not shrink when the machine's load delays one refresh: only the first and the
    # last count. Two runs each refreshing would bring it down to about half a lifetime.
    gaps = [b.at - a.at for a, b in itertools.pairwise(refreshes)]
    assert (refreshes[-1].at - refreshes[0].at) / len(gaps) > 0.75 * lifetime, gaps
    # A run switched to the token the other one refreshed, rather than refreshing its own.
    assert any("Using the OAuth access token another run refreshed" in run.stderr for run in runs)


def test_every_request_zendesk_sees_draws_on_the_budget_but_token_calls_do_not(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(1_000)
    sim.set_events(events)
    sim.faults.extend(["ok", "401", "ok", "401"])  # two refused requests, each sent again
    config = oauth_config(sim, tmp_path, page_size=200)
    tap = TapZendeskTicketEvents(config=config)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")

    with contextlib.redirect_stdout(out):
        tap.sync_all()

    api = api_requests(sim)
    assert [r.status for r in api].count(401) == 2
    assert len(token_requests(sim)) == 3
    # The re-sends after a 401 went through the throttle like every export request (they
    # count in Zendesk's export budget); the token calls did not (they are not exports).
    assert tap.throttle.requests == len(api)


# --- failures of the token endpoint ------------------------------------------------------


def test_invalid_grant_at_start_is_one_line_and_no_retry(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    config = oauth_config(sim, tmp_path, refresh_token="sim-rt-that-was-rotated-away", page_size=1000)

    run = run_tap(tmp_path, config, env={"LOGLEVEL": "DEBUG"}, oauth=sim)

    assert run.returncode == 1
    line = run.one_error_line()
    assert "no longer valid (invalid_grant" in line
    assert "sim-rt-that-was-rotated-away" not in run.stderr + run.stdout
    assert [(r.path, r.status) for r in sim.requests] == [(OAUTH_TOKEN_PATH, 400)]
    assert run.ids == []


def test_invalid_grant_mid_run_keeps_the_state_of_the_pages_done(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(2_000)
    sim.set_events(events)
    sim.latency = 0.3
    sim.oauth.token_lifetime = 1

    def revoke_the_grant(request: Request) -> bool:  # as an admin revoking the app would
        if len([r for r in api_requests(sim) if r.status == 200]) >= 2:
            sim.oauth.refresh_tokens.clear()
        return False

    sim.oauth.on_export = revoke_the_grant
    config = oauth_config(sim, tmp_path, page_size=200)

    run = run_tap(tmp_path, config, oauth=sim)

    assert run.returncode == 1
    line = run.one_error_line()
    assert "(invalid_grant" in line
    # The store was empty when the run began, but the token refused is the one this run saved:
    # the line says so, rather than blaming the configured token and an empty store.
    assert "was empty" not in line
    assert "it is the one the token store" in line
    assert run.bookmark is not None
    emitted = set(run.ids)
    assert emitted
    assert all(e["timestamp"] >= run.bookmark for e in events if e["id"] not in emitted)


def test_transient_token_endpoint_failures_are_retried_like_any_request(
    sim: Simulator, tmp_path: Path, waits: list[float]
) -> None:
    events = make_events(500)
    sim.set_events(events)
    sim.oauth.faults.extend(["500", "reset", "nonjson", "503-retry-after", "429"])
    config = oauth_config(sim, tmp_path)

    run = sync_in_process(config)

    assert run.returncode == 0, run.stderr
    assert_no_oauth_secret(sim, tmp_path, run)
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    assert [r.status for r in token_requests(sim)] == [500, -1, 200, 503, 429, 200]
    # Exponential backoff (2, 4, 8 s plus jitter), then Retry-After exactly (1 s), for 503 and 429.
    assert len(waits) == 5
    for n, wait in enumerate(waits[:3]):
        assert 2.0 * 2**n <= wait <= 2.0 * 2**n + 1.0
    assert waits[3:] == [1.0, 1.0]


def test_a_token_endpoint_that_keeps_failing_ends_the_run_in_one_message(
    sim: Simulator, tmp_path: Path, waits: list[float]
) -> None:
    sim.set_events(make_events(50))
    sim.oauth.faults.extend(["503"] * 20)
    config = oauth_config(sim, tmp_path)

    run = sync_in_process(config)

    assert run.returncode == 1
    assert_no_oauth_secret(sim, tmp_path, run)
    assert "Giving up on the OAuth token request after repeated failures: 503" in run.stderr
    assert len(token_requests(sim)) == 6
    assert len(waits) == 5
    assert api_requests(sim) == []


def test_wrong_client_secret_names_the_client_settings(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(50))
    config = oauth_config(sim, tmp_path, client_secret="not-the-client-secret")

    run = run_tap(tmp_path, config, oauth=sim)

    assert run.returncode == 1
    line = run.one_error_line()
    assert "invalid_client" in line
    assert "'client_id' and 'client_secret'" in line
    assert "not-the-client-secret" not in run.stderr


# --- secrets and where the store lives -------------------------------------------------------


def test_no_secret_in_any_output_state_or_file_at_debug_level(sim: Simulator, tmp_path: Path) -> None:
    events = make_events(1_500)
    sim.set_events(events)
    sim.latency = 0.2
    sim.oauth.token_lifetime = 1
    sim.oauth.actual_lifetime = 1.5
    sim.oauth.faults.append("503-retry-after")
    sim.faults.extend(["ok", "401"])  # a refused request mid-run, as well as refreshes
    config = oauth_config(sim, tmp_path, page_size=250)

    run = run_tap(tmp_path, config, env={"LOGLEVEL": "DEBUG"}, oauth=sim)
    sim.oauth.refresh_tokens.clear()
    sim.oauth.expire_access_tokens()
    failed = run_tap(tmp_path, config, name="failed", env={"LOGLEVEL": "DEBUG"}, oauth=sim)

    # run_tap(oauth=sim) checked stdout, STATE, stderr and every file for every token ever issued.
    assert run.returncode == 0, run.stderr
    assert "DEBUG" in run.stderr
    assert len(refreshed_lines(run)) >= 2
    assert 401 in [r.status for r in sim.requests]
    assert run.states
    assert failed.returncode == 1
    assert "invalid_grant" in failed.one_error_line()
    # The store is the one place the live refresh token is written, readable by its owner only.
    store = Path(config["oauth_token_store"])
    assert store.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in store.parent.iterdir()) == [STORE_NAME, STORE_NAME + ".lock"]
    assert (store.parent / (STORE_NAME + ".lock")).read_bytes() == b""


@pytest.mark.parametrize("meltano", [True, False], ids=["meltano-project", "user-config-dir"])
def test_default_store_location(sim: Simulator, tmp_path: Path, meltano: bool) -> None:
    sim.set_events(make_events(20))
    config = oauth_config(sim, tmp_path, oauth_token_store=None)
    account = sim.url.split("://")[1].replace(":", "-")  # 127.0.0.1-<port>
    if meltano:
        env = {"MELTANO_PROJECT_ROOT": str(tmp_path / "project"), "XDG_CONFIG_HOME": str(tmp_path / "unused")}
        expected = tmp_path / "project" / ".meltano" / "run" / "tap-zendesk-ticket-events"
    else:
        env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        expected = tmp_path / "xdg" / "tap-zendesk-ticket-events"

    run = run_tap(tmp_path, config, name="default", env=env)

    assert run.returncode == 0, run.stderr
    # Named after the account, then a digest of its whole address and of the OAuth client.
    (store,) = expected.glob(f"{account}-*-oauth-token.json")
    assert sim.oauth.client_id not in store.name
    assert str(store) in refreshed_lines(run)[0]
    assert store.stat().st_mode & 0o777 == 0o600
    assert expected.stat().st_mode & 0o777 == 0o700
    assert not (tmp_path / "unused").exists()
    assert sim.oauth.is_live(stored({"oauth_token_store": str(store)})["access_token"])
