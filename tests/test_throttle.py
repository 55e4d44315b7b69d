"""The request budget: a sliding minute, shared by every stream, never earning a 429."""

from __future__ import annotations

import email.utils
import math

import backoff._sync
import pytest
import requests

import zendesk_simulator
from tap_zendesk_ticket_events import retry as retry_module
from tap_zendesk_ticket_events import throttle as throttle_module
from tap_zendesk_ticket_events.retry import retry_after
from tap_zendesk_ticket_events.throttle import Throttle
from tests.conftest import make_config
from tests.runners import sync_in_process
from tests.virtual_clock import VirtualClock
from zendesk_simulator import Simulator, make_events


def test_sliding_window_waits_only_for_the_oldest_request_to_age_out() -> None:
    clock = VirtualClock(now=1000.0)
    throttle = Throttle(3, clock=clock, sleep=clock.sleep)
    for gap in (0, 10, 10):
        clock.now += gap
        throttle.acquire()
        assert throttle.last_wait == 0.0
    # 3 sent at t=1000, 1010, 1020: the 4th waits until 1060.
    clock.now = 1030
    throttle.acquire()
    assert throttle.last_wait == 30.0
    assert clock.now == 1060
    # The 5th waits for the one sent at 1010 to leave the window.
    throttle.acquire()
    assert throttle.last_wait == 10.0
    assert throttle.requests == 5


def test_a_slot_counts_from_when_its_answer_came() -> None:
    clock = VirtualClock(now=1000.0)
    throttle = Throttle(1, clock=clock, sleep=clock.sleep)
    slot = throttle.acquire()
    clock.now += 5  # a slow answer: Zendesk counted the request on arrival, up to 5 s later
    throttle.settle(slot)
    throttle.acquire()
    assert clock.now == 1065  # a minute after the answer, not after the send at 1000


def test_no_sixty_second_window_ever_holds_more_than_the_budget() -> None:
    clock = VirtualClock(now=1000.0)
    throttle = Throttle(10, clock=clock, sleep=clock.sleep)
    sent = []
    for i in range(100):
        clock.now += (i * 7919) % 13 / 4  # irregular gaps between requests
        throttle.settle(throttle.acquire())
        sent.append(clock.now)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u - t < 60) <= 10


def test_tap_over_the_budget_waits_and_spaces_its_requests(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three times the budget: the run must wait, and Zendesk's own count must never trip.

    One virtual clock for the tap's throttle, backoff and the simulator's budget: the run's
    two minutes of waiting take no time, and the spacing checked is the one Zendesk sees.
    """
    clock = VirtualClock()
    clock.install(monkeypatch, throttle_module, *zendesk_simulator.CLOCKED, backoff._sync)
    sim.set_events(make_events(600))  # one a second or slower: 6 pages of 100, or 7
    budget = 2
    sim.rate_limit_per_minute = budget  # Zendesk's own count: one more request would get a 429

    run = sync_in_process(make_config(sim, page_size=100, max_requests_per_minute=budget))

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids)) == 600
    sent = sim.export_requests(None)
    assert len(sent) >= 3 * budget
    assert [r.status for r in sent] == [200] * len(sent), "the simulator's budget was exceeded: 429"
    # No 60-second window holds more than the budget: the (n+budget)-th request arrived at
    # least a minute after the n-th.
    for early, late in zip(sent, sent[budget:], strict=False):
        assert late.at - early.at >= 60 - 1e-6, [round(r.at - sent[0].at, 3) for r in sent]
    # ...and no more than it had to: a minute for each further batch of the budget, all
    # asked of the throttle.
    minutes = math.ceil(len(sent) / budget) - 1
    assert sent[-1].at - sent[0].at < minutes * 60 + 1, clock.sleeps
    assert round(sum(clock.sleeps)) == minutes * 60


def test_retry_after_reads_seconds_and_http_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(value: str | None) -> requests.Response:
        response = requests.Response()
        if value is not None:
            response.headers["Retry-After"] = value
        return response

    assert retry_after(answer("17")) == 17.0
    assert retry_after(answer(None)) is None
    assert retry_after(answer("soon")) is None
    # An HTTP date counts from the tap's clock, here one that stands still.
    clock = VirtualClock()
    clock.install(monkeypatch, retry_module)
    in_30s = email.utils.formatdate(clock.time() + 30, usegmt=True)  # whole seconds: up to 1 s less
    assert 29 < (retry_after(answer(in_30s)) or 0) <= 30
    assert retry_after(answer(email.utils.formatdate(clock.time() - 30, usegmt=True))) == 0.0
