"""The account's own budget: what Zendesk says is left paces the export, and the other requests.

Unit tests hold the throttle to a counted clock; the runs put one virtual clock into the tap's
throttle, backoff and the simulator, so minutes of waiting take no time and the spacing
checked is the one the simulator saw.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import backoff._sync
import pytest
import requests
from singer_sdk import RESTStream

import zendesk_simulator
from tap_zendesk_ticket_events import throttle as throttle_module
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tap_zendesk_ticket_events.throttle import (
    RESET_MARGIN_SECONDS,
    AccountPacer,
    Announced,
    Throttle,
    account_limit,
    export_budget,
)
from tests.conftest import make_config
from tests.runners import run_tap_in_process
from tests.virtual_clock import VirtualClock
from zendesk_simulator import API_TOKEN, EMAIL, Simulator, make_events

if TYPE_CHECKING:
    from pathlib import Path

    from zendesk_simulator import Request

HEADER = "zendesk-ratelimit-incremental-exports"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({HEADER: "total=10; remaining=8; resets=44"}, Announced(10, 8, 44.0)),
        ({"Zendesk-RateLimit-Incremental-Exports": "TOTAL=30;Remaining=0; RESETS=7"}, Announced(30, 0, 7.0)),
        ({HEADER: "resets=5; remaining=2; total=10"}, Announced(10, 2, 5.0)),
        ({HEADER: "remaining=2; resets=5"}, Announced(None, 2, 5.0)),
        ({HEADER: "total=10; remaining=eight; resets=44"}, None),
        ({HEADER: "total=10; resets=44"}, None),
        ({HEADER: "total=10, remaining=8, resets=44"}, None),
        ({HEADER: ""}, None),
        ({}, None),
    ],
)
def test_the_export_budget_header_in_any_case_and_order_or_nothing(
    headers: dict[str, str], expected: Announced | None
) -> None:
    assert export_budget(headers) == expected


def test_the_account_wide_limit_from_either_family_of_headers() -> None:
    assert account_limit({"ratelimit-limit": "400", "ratelimit-remaining": "0", "ratelimit-reset": "44"}) == (
        Announced(400, 0, 44.0)
    )
    assert account_limit({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "9"}) == (
        Announced(700, 3, 9.0)
    )
    assert account_limit({"x-rate-limit": "400"}) is None


def test_the_account_total_becomes_the_budget_unless_a_lower_cap_is_set() -> None:
    unset, capped_low, capped_high = Throttle(), Throttle(5), Throttle(50)
    assert unset.max_per_minute == 10
    assert unset.describe() == "10 requests per minute until Zendesk's first answer says the account's"
    for throttle in (unset, capped_low, capped_high):
        throttle.heard({HEADER: "total=30; remaining=29; resets=60"})
    assert unset.max_per_minute == 30
    assert unset.describe() == "30 requests per minute, the account's (High Volume)"
    assert capped_low.max_per_minute == 5
    assert capped_low.describe() == "5 requests per minute, max_requests_per_minute (the account's is 30 (High Volume))"
    assert capped_high.max_per_minute == 30
    # A malformed or missing header changes nothing.
    legacy = Throttle()
    legacy.heard({HEADER: "total=thirty"})
    legacy.heard({})
    assert legacy.max_per_minute == 10


def test_nothing_left_of_another_clients_minute_waits_resets_and_a_margin() -> None:
    """The tap sent 2 of 10; Zendesk says none is left: it waits, and counts the wait as another client's."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    throttle.settle(throttle.acquire())
    throttle.heard({HEADER: "total=10; remaining=1; resets=50"})
    throttle.settle(throttle.acquire())
    throttle.heard({HEADER: "total=10; remaining=0; resets=40"})
    throttle.acquire()
    assert clock.slept == [40 + RESET_MARGIN_SECONDS]
    assert (throttle.others_waits, throttle.others_waited) == (1, 40 + RESET_MARGIN_SECONDS)


def test_a_minute_the_tap_spent_alone_is_waited_by_its_own_window_and_not_blamed_on_others() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    for n in range(10):
        throttle.settle(throttle.acquire())
        throttle.heard({HEADER: f"total=10; remaining={9 - n}; resets=60"})
    throttle.acquire()
    assert clock.slept == [60.0]  # no margin: its own window is exact
    assert throttle.others_waits == 0


def test_the_announced_remaining_is_spent_until_the_next_answer() -> None:
    """Two sends before an answer (never the case today, but the throttle is thread-safe): the
    second one knows the first took the last request left."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    throttle.settle(throttle.acquire())
    throttle.heard({HEADER: "total=10; remaining=1; resets=30"})
    throttle.acquire()
    throttle.acquire()
    assert clock.slept == [30 + RESET_MARGIN_SECONDS]


def test_the_account_wide_pacer_waits_only_when_nothing_is_left() -> None:
    clock = FakeClock()
    pacer = AccountPacer(clock=clock, sleep=clock.sleep)
    pacer.acquire()
    pacer.heard({"ratelimit-remaining": "1", "ratelimit-reset": "20"})
    pacer.acquire()
    assert clock.slept == []
    pacer.heard({"ratelimit-remaining": "0", "ratelimit-reset": "20"})
    pacer.acquire()
    assert clock.slept == [20 + RESET_MARGIN_SECONDS]
    assert (pacer.requests, pacer.waits) == (3, 1)


def lines_of(stderr: str) -> list[str]:
    return [line.split(" | ")[-1] for line in stderr.splitlines()]


def most_in_a_minute(sent: list[Request]) -> int:
    return max(sum(1 for later in sent[i:] if later.at - first.at < 60) for i, first in enumerate(sent))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock()
    clock.install(monkeypatch, throttle_module, *zendesk_simulator.CLOCKED, backoff._sync)
    return clock


def test_a_high_volume_account_is_exported_at_30_a_minute_by_default(
    sim: Simulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """No max_requests_per_minute: 10 until the first answer says 30, then 30 a minute, no 429."""
    sim.rate_limit_per_minute = 30
    sim.set_events(make_events(3_000, per_second=1e9))  # one a second: 31 pages of 100
    run = run_tap_in_process(tmp_path, make_config(sim, page_size=100, max_requests_per_minute=None))

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids)) == 3_000
    sent = sim.export_requests(None)
    assert [r.status for r in sent] == [200] * len(sent)
    assert most_in_a_minute(sent) == 30
    # One minute's wait for each further 30, and no more: at 10 a minute it would take three times as long.
    assert sent[-1].at - sent[0].at <= (len(sent) - 1) // 30 * 60 + 1
    lines = lines_of(run.stderr)
    start = next(line for line in lines if line.startswith("ticket_events: exporting"))
    assert "budget: 10 requests per minute until Zendesk's first answer says the account's" in start
    assert "Export budget: 30 requests per minute, the account's (High Volume)." in lines


def test_a_cap_below_the_accounts_budget_is_never_exceeded(sim: Simulator, clock: VirtualClock, tmp_path: Path) -> None:
    sim.rate_limit_per_minute = 30
    sim.set_events(make_events(1_000, per_second=1e9))
    run = run_tap_in_process(tmp_path, make_config(sim, page_size=100, max_requests_per_minute=4))

    assert run.returncode == 0, run.stderr
    sent = sim.export_requests(None)
    assert most_in_a_minute(sent) == 4
    assert any(
        "budget: 4 requests per minute, max_requests_per_minute (the account's is 30 (High Volume))" in line
        for line in lines_of(run.stderr)
    )


def test_another_client_spending_most_of_each_minute_draws_no_429(
    sim: Simulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """Another integration spends 8 of the 10 at the start of every minute: the tap sends its 2,
    hears nothing is left, and waits for the budget to renew instead of drawing 429s."""
    sim.rate_limit_per_minute = 10
    sim.other_client_per_minute = 8
    sim.set_events(make_events(800, per_second=1e9))  # 9 pages of 100
    run = run_tap_in_process(tmp_path, make_config(sim, page_size=100, max_requests_per_minute=None))

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids)) == 800
    sent = sim.export_requests(None)
    assert [r.status for r in sent] == [200] * len(sent), "a 429: the tap sent what the header said was refused"
    assert most_in_a_minute(sent) == 2
    lines = lines_of(run.stderr)
    waits = [line for line in lines if "spent by another client" in line]
    assert waits
    assert waits[0].startswith("Export budget: Zendesk says none of the account's 10 requests of this minute is left")
    assert any(re.search(r"; waited \d+m \d+s for another client's use of the minute; ", line) for line in lines)
    (summary,) = [line for line in lines if line.startswith("ticket_events: done:")]
    summed = re.search(r"0 rate-limited \(429\), (\d+) waits for another client's use of the minute", summary)
    assert summed
    assert int(summed[1]) == len(waits) > 0


def test_a_429_in_spite_of_the_header_still_waits_retry_after(
    sim: Simulator, clock: VirtualClock, tmp_path: Path
) -> None:
    """Another client's request between the tap's answer and its next send: the 429 is honoured."""
    sim.rate_limit_per_minute = 10
    sim.retry_after = 7
    sim.set_events(make_events(300, per_second=1e9))
    sim.faults.extend(["ok", "429"])
    run = run_tap_in_process(tmp_path, make_config(sim, page_size=100, max_requests_per_minute=None))

    assert run.returncode == 0, run.stderr
    assert any("waiting 7.0 s (Retry-After)" in line for line in lines_of(run.stderr))
    assert 7.0 in clock.sleeps


def test_requests_that_are_not_exports_are_paced_by_the_account_wide_limit(sim: Simulator, clock: VirtualClock) -> None:
    """A ticket's comments through the tap's own session: the account-wide limit, not the export budget."""
    sim.account_rate_limit_per_minute = 3
    sim.set_events(make_events(50))
    ticket = next(e["ticket_id"] for e in sim.events)
    tap = TapZendeskTicketEvents(config=make_config(sim, max_requests_per_minute=None))
    stream = tap.streams["ticket_events"]
    assert isinstance(stream, RESTStream)
    session = stream.requests_session

    answers = [
        session.get(f"{sim.url}/api/v2/tickets/{ticket}/comments", auth=(f"{EMAIL}/token", API_TOKEN), timeout=10)
        for _ in range(7)
    ]

    assert [a.status_code for a in answers] == [200] * 7, "a 429: the pacer sent what the headers said was refused"
    assert all(isinstance(a.json()["comments"], list) for a in answers)
    seen = [r for r in sim.requests if "/comments" in r.path]
    assert most_in_a_minute(seen) == 3
    assert (tap.pacer.requests, tap.pacer.waits) == (7, 2)
    assert tap.throttle.requests == 0, "a comments request drew on the export budget"


def test_the_simulator_announces_its_budget_on_every_export_answer(sim: Simulator, clock: VirtualClock) -> None:
    sim.rate_limit_per_minute = 30
    sim.other_client_per_minute = 25
    sim.set_events(make_events(50))
    url = f"{sim.url}/api/v2/incremental/ticket_events.json?start_time=1700000000"
    auth = (f"{EMAIL}/token", API_TOKEN)

    answers = [requests.get(url, auth=auth, timeout=10) for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    budgets = [export_budget(a.headers) for a in answers]
    assert [b.remaining for b in budgets if b] == [4, 3, 2, 1, 0, 0]
    assert {b.total for b in budgets if b} == {30}
    assert answers[-1].headers["Retry-After"] == "60"


def test_a_429_is_waited_by_its_retry_after_alone() -> None:
    """The refused answer's header says nothing is left too: the retry waits Retry-After, not that again."""
    clock = FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    throttle.settle(throttle.acquire())
    throttle.heard({HEADER: "total=10; remaining=1; resets=30"})
    throttle.settle(throttle.acquire())
    throttle.refused()  # a 429: backoff sleeps its Retry-After (retry.py)
    clock.sleep(30)
    throttle.acquire()
    assert clock.slept == [30]
    assert throttle.others_waits == 0
