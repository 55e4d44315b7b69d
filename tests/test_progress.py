"""Progress lines a person can follow: the window, each page, waits, and a summary."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tap_zendesk_ticket_events.progress import Progress, duration
from tests.conftest import make_config, run_tap
from tests.simulator import Simulator, make_events

START = 1_700_000_000
WINDOW = 2_000
PAGE_LINE = re.compile(
    r"ticket_events: page (\d+), ([\d,]+) events \(([\d,]+) in all\); reached (\S+), ([\d.]+)% of the window; "
    r"([\d,]+) events/min; (.+)\.$"
)
SUMMARY = re.compile(
    r"ticket_events: done: ([\d,]+) events, (\d+) pages, (\d+) requests, (\d+) rate-limited \(429\), (\d+) retries, "
    r"(\d+) duplicates dropped, (\S+); bookmark (\d+) \((\S+)\)\.$"
)


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def window_config(sim: Simulator, **extra: object) -> dict[str, object]:
    return make_config(sim, start_date=iso(START), end_date=iso(START + WINDOW), page_size=100, **extra)


def test_start_page_and_summary_lines_carry_the_right_numbers(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(1_000, start=START, per_second=1e9))  # one event a second
    sim.retry_after = 1
    sim.faults.extend(["ok", "500", "ok", "429"])

    run = run_tap(tmp_path, window_config(sim))

    assert run.returncode == 0, run.stderr
    lines = [line.split(" | ")[-1] for line in run.stderr.splitlines()]
    start = next(line for line in lines if line.startswith("ticket_events: exporting"))
    assert f"from {iso(START)} ({START}, start_date; no bookmark yet)" in start
    assert f"up to end_date {iso(START + WINDOW)}" in start
    assert "auth: API token (email + api_token)" in start
    assert "throttle: 10000 requests/minute" in start

    pages = [m for m in map(PAGE_LINE.match, lines) if m]
    bookmarks = [s["bookmarks"]["ticket_events"]["replication_key_value"] for s in run.states]
    per_page_bookmarks = list(dict.fromkeys(bookmarks))  # one STATE per page, in order
    assert [int(m[1]) for m in pages] == list(range(1, len(pages) + 1))
    assert len(pages) == len(per_page_bookmarks) == 11  # 1,000 events, 99 new per page after the first
    total = 0
    for match, reached in zip(pages, per_page_bookmarks, strict=True):
        total += int(match[2].replace(",", ""))
        assert int(match[3].replace(",", "")) == total
        assert match[4] == iso(reached)
        assert match[5] == f"{100 * (reached - START) / WINDOW:.1f}"
    assert total == len(run.ids) == 1_000
    assert pages[-1][7] == "last page"  # not a time left computed from the window's span
    # The SDK's own start and end lines, superseded by these, are not repeated.
    assert "Starting incremental sync" not in run.stderr
    assert "Pagination stopped" not in run.stderr
    # Waits are announced with their cause and length.
    assert any("Export request failed (500" in line and "retrying in" in line for line in lines)
    assert any("Rate limited by Zendesk (429" in line and "waiting 1.0 s (Retry-After)" in line for line in lines)

    (summary,) = [m for m in map(SUMMARY.match, lines) if m]
    requests = sim.export_requests()
    delivered = sum(r.count for r in requests if r.status == 200)
    assert int(summary[1].replace(",", "")) == 1_000
    assert int(summary[2]) == len(pages)
    assert int(summary[3]) == len(requests)
    assert (int(summary[4]), int(summary[5])) == (1, 2)
    assert int(summary[6]) == delivered - 1_000
    assert int(summary[8]) == run.bookmark
    assert summary[9] == iso(run.bookmark)


def test_resumed_run_says_it_starts_from_the_bookmark(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(300, start=START, per_second=1e9))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": START + 150}}}

    run = run_tap(tmp_path, window_config(sim), state=state)

    assert f"from {iso(START + 150)} ({START + 150}, the bookmark)" in run.stderr


def test_progress_interval_thins_page_lines(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(1_000, start=START, per_second=1e9))

    run = run_tap(tmp_path, window_config(sim, progress_interval=3_600))

    assert run.returncode == 0, run.stderr
    lines = [line.split(" | ")[-1] for line in run.stderr.splitlines()]
    assert len([line for line in lines if PAGE_LINE.match(line)]) == 1  # the first page only
    (summary,) = [m for m in map(SUMMARY.match, lines) if m]
    assert int(summary[2]) == 11  # every page still counted


def test_structured_logging_and_sdk_metrics_keep_working(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(300, start=START, per_second=1e9))
    log_config = tmp_path / "logging.yaml"
    log_config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n  structured:\n    (): singer_sdk.logging.StructuredFormatter\n"
        "handlers:\n  stderr:\n    class: logging.StreamHandler\n    formatter: structured\n    stream: ext://sys.stderr\n"
        "root:\n  level: INFO\n  handlers: [stderr]\n"
    )

    run = run_tap(tmp_path, window_config(sim), env={"SINGER_SDK_LOG_CONFIG": str(log_config)})

    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    messages = [r.get("message", "") for r in records]
    assert any(PAGE_LINE.match(m) for m in messages)
    assert any(SUMMARY.match(m) for m in messages)
    metrics = [r["metric_info"]["metric"] for r in records if r.get("message") == "METRIC"]
    assert "record_count" in metrics
    assert "http_request_duration" in metrics


def test_estimate_follows_the_recent_pace() -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    seen: list[str] = []

    class Log:
        def info(self, msg: str, *args: object) -> None:
            seen.append(msg % args)

    progress = Progress("s", Log(), clock=clock)  # type: ignore[arg-type]
    progress.start(0, "start_date", 10_000, "API token", 10)
    for n in range(1, 5):
        clock.now = 60.0 * n  # a page a minute, each covering 1,000 seconds of the window
        progress.page(500, 1, 1_000 * n)
    assert seen[-1].endswith("40.0% of the window; 500 events/min; about 6m 0s left.")
    assert duration(90_000) == "1d 1h"
