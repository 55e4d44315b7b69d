"""The account's budget (issue 27): a High Volume backfill with default settings, and a shared account.

Each run is the real tap against the real simulator over loopback, in this process, with one
virtual clock in the tap's throttle, backoff and the simulator (tests/virtual_clock.py): a
minute of waiting takes no time, and each page takes ``LATENCY`` seconds of it, as a page
from Zendesk does. The wall time is that clock's: the waits the tap chose plus the pages'
latency. The tap's CPU per page (milliseconds, measured by the throughput rows) is left out;
it is small against a minute. "Default settings" are the budget's: no
``max_requests_per_minute``. Pages are of 100 events (``page_size``), which changes nothing
in the pacing and keeps the benchmark's CPU small.

"Today's behaviour" is the tap with the header unread (``export_budget`` answering None):
paced at the default 10 requests per minute, deaf to what another client spent.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import backoff._sync  # noqa: E402

import zendesk_simulator  # noqa: E402
from tap_zendesk_ticket_events import throttle as throttle_module  # noqa: E402
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents  # noqa: E402
from tests.virtual_clock import VirtualClock  # noqa: E402
from zendesk_simulator import API_TOKEN, EMAIL, Simulator, SimulatorServer, make_events  # noqa: E402

START = 1_700_000_000
HIGH_VOLUME = 30
#: Seconds a page of 1,000 events takes Zendesk to answer (virtual).
LATENCY = 0.5


@dataclass
class Outcome:
    pages: int
    wall: float
    """Virtual seconds from the first request sent to the last answer."""
    rate_limited: int
    others_waits: int


PAGE_SIZE = 100


def events_for(pages: int) -> list[dict[str, Any]]:
    """One event a second: each page re-delivers its boundary second, so 99 new a page."""
    return make_events((pages - 1) * (PAGE_SIZE - 1) + PAGE_SIZE, start=START, per_second=1e9)


def backfill(
    events: list[dict[str, Any]], per_minute: int, *, other_client: int = 0, header_read: bool = True
) -> Outcome:
    """Export ``events`` from an account with a ``per_minute`` export budget."""
    clock = VirtualClock()
    modules: list[Any] = [throttle_module, *zendesk_simulator.CLOCKED, backoff._sync]
    saved = [(module, module.time) for module in modules]
    saved_reader = throttle_module.export_budget
    sim = Simulator(rate_limit_per_minute=per_minute, latency=LATENCY)
    sim.other_client_per_minute = other_client
    sim.set_events(events)
    server = SimulatorServer(sim).start()
    try:
        for module in modules:
            module.time = clock.module()
        if not header_read:
            throttle_module.export_budget = lambda _headers: None  # type: ignore[assignment]
        config: dict[str, Any] = {"api_url": sim.url, "email": EMAIL, "api_token": API_TOKEN}
        config.update(start_date="2023-11-14T00:00:00Z", page_size=PAGE_SIZE)
        tap = TapZendeskTicketEvents(config=config)
        logging.disable(logging.WARNING)  # the tap's progress lines: not this table's business
        with contextlib.redirect_stdout(io.StringIO()):
            tap.sync_all()
        sent = sim.export_requests(None)
        return Outcome(
            pages=sum(1 for r in sent if r.status == 200),
            wall=clock.time() - min(r.at for r in sent),
            rate_limited=sum(1 for r in sent if r.status == 429),
            others_waits=tap.throttle.others_waits,
        )
    finally:
        logging.disable(logging.NOTSET)
        throttle_module.export_budget = saved_reader
        for module, original in saved:
            module.time = original
        server.stop()


def floor(pages: int, per_minute: int) -> float:
    """The issue's floor: P pages at N a minute take P/N minutes."""
    return pages / per_minute * 60


def run(*, quick: bool) -> list[tuple[str, str, str, str]]:
    """The benchmark's rows: High Volume with default settings (and today's), and a shared account."""
    events = events_for(61 if quick else 301)
    new = backfill(events, HIGH_VOLUME)
    print(f"  High Volume, default settings: {new}", flush=True)
    old = backfill(events, HIGH_VOLUME, header_read=False)
    print(f"  High Volume, today's behaviour: {old}", flush=True)
    other = 24
    shared_events = events_for(13 if quick else 31)
    shared = backfill(shared_events, HIGH_VOLUME, other_client=other)
    print(f"  shared account: {shared}", flush=True)
    shared_old = backfill(shared_events, HIGH_VOLUME, other_client=other, header_read=False)
    print(f"  shared account, today's behaviour: {shared_old}", flush=True)
    hv_floor = floor(new.pages, HIGH_VOLUME)
    return [
        (
            f"High Volume backfill, default settings: {new.pages} pages (virtual wall / 30-per-minute floor)",
            f"{new.wall:.0f} s / {hv_floor:.0f} s; today {old.wall:.0f} s",
            f"{new.wall / hv_floor:.2f}x; today {old.wall / hv_floor:.2f}x",
            "<= 1.05x",
        ),
        (
            f"Shared account: another client spends {other} of the 30 each minute, {shared.pages} pages: 429s received",
            f"{shared.rate_limited} ({shared.others_waits} waits for the other client); "
            f"today {shared_old.rate_limited}",
            "",
            "0",
        ),
    ]
