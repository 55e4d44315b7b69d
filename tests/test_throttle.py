"""The request budget: a sliding minute, shared by every stream, never earning a 429."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import requests

from tap_zendesk_ticket_events.retry import retry_after
from tap_zendesk_ticket_events.throttle import Throttle
from tests.conftest import make_config, run_tap, selecting
from tests.simulator import Simulator, make_events


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_sliding_window_waits_only_for_the_oldest_request_to_age_out() -> None:
    clock = FakeClock()
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
    clock = FakeClock()
    throttle = Throttle(1, clock=clock, sleep=clock.sleep)
    slot = throttle.acquire()
    clock.now += 5  # a slow answer: Zendesk counted the request on arrival, up to 5 s later
    throttle.settle(slot)
    throttle.acquire()
    assert clock.now == 1065  # a minute after the answer, not after the send at 1000


def test_no_sixty_second_window_ever_holds_more_than_the_budget() -> None:
    clock = FakeClock()
    throttle = Throttle(10, clock=clock, sleep=clock.sleep)
    sent = []
    for i in range(100):
        clock.now += (i * 7919) % 13 / 4  # irregular gaps between requests
        throttle.settle(throttle.acquire())
        sent.append(clock.now)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u - t < 60) <= 10


def test_tap_at_the_budget_draws_no_429(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(450))
    sim.rate_limit_per_minute = 6  # 5 pages of ticket events, 1 of metric events: one shared budget

    config = make_config(sim, page_size=100, max_requests_per_minute=6)
    both = selecting(tmp_path, config, "ticket_events", "ticket_metric_events")

    run = run_tap(tmp_path, config, extra_args=both)

    assert run.returncode == 0, run.stderr
    assert len(sim.export_requests(None)) == 6
    assert all(r.status == 200 for r in sim.export_requests(None))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def answer(value: str | None) -> requests.Response:
        response = requests.Response()
        if value is not None:
            response.headers["Retry-After"] = value
        return response

    assert retry_after(answer("17")) == 17.0
    assert retry_after(answer(None)) is None
    assert retry_after(answer("soon")) is None
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(answer(in_30s)) or 0) <= 30
    assert retry_after(answer(email.utils.formatdate(time.time() - 30, usegmt=True))) == 0.0
