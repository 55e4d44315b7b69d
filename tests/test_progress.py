"""Progress lines a person can follow: the window, each page, waits, and a summary."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from tap_zendesk_ticket_events.progress import Progress, duration
from tests.conftest import iso, make_config
from tests.runners import run_tap, run_tap_in_process
from tests.virtual_clock import VirtualClock
from zendesk_simulator import Simulator, make_events

START = 1_700_000_000
WINDOW = 2_000
PAGE_LINE = re.compile(
    r"ticket_events: page (\d+), ([\d,]+) events \(([\d,]+) in all\); reached (\S+), ([\d.]+)% of the window; "
    r"([\d,]+) events/min; (.+)\.$"
)
SUMMARY = re.compile(
    r"ticket_events: done: ([\d,]+) events, (\d+) pages, (\d+) requests, (\d+) rate-limited \(429\), "
    r"\d+ waits for another client's use of the minute \(\S+\), (\d+) retries, "
    r"(\d+) duplicates dropped, (\S+); bookmark (\d+) \((\S+)\)\.$"
)


def window_config(sim: Simulator, **extra: object) -> dict[str, object]:
    return make_config(sim, start_date=iso(START), end_date=iso(START + WINDOW), page_size=100, **extra)


def test_start_page_and_summary_lines_carry_the_right_numbers(
    sim: Simulator, tmp_path: Path, waits: list[float]
) -> None:
    """In process, with backoff's sleeps recorded: the lines announce the waits the tap chose."""
    sim.set_events(make_events(1_000, start=START, per_second=1e9))  # one event a second
    sim.retry_after = 1
    sim.faults.extend(["ok", "500", "ok", "429"])

    run = run_tap_in_process(tmp_path, window_config(sim))

    assert run.returncode == 0, run.stderr
    lines = [line.split(" | ")[-1] for line in run.stderr.splitlines()]
    start = next(line for line in lines if line.startswith("ticket_events: exporting"))
    assert f"from {iso(START)} ({START}, start_date; no bookmark yet)" in start
    assert f"up to end_date {iso(START + WINDOW)}" in start
    assert "auth: API token (email + api_token)" in start
    assert "budget: 10000 requests per minute, max_requests_per_minute" in start

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

    run = run_tap_in_process(tmp_path, window_config(sim), state=state)

    assert f"from {iso(START + 150)} ({START + 150}, the bookmark)" in run.stderr


def test_progress_interval_thins_page_lines(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(1_000, start=START, per_second=1e9))

    run = run_tap_in_process(tmp_path, window_config(sim, progress_interval=3_600))

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
    assert "http_request_count" in metrics


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)


def progress_with_clock(start: int, end: int | None, *, now: float = 0.0) -> tuple[Progress, VirtualClock, Log]:
    clock, log = VirtualClock(), Log()
    progress = Progress("s", log, clock=clock, wall_clock=lambda: now)  # type: ignore[arg-type]
    progress.start(start, "start_date", end, "API token")
    return progress, clock, log


def test_estimate_follows_the_recent_pace() -> None:
    progress, clock, log = progress_with_clock(0, 10_000)
    for n in range(1, 5):
        clock.now = 60.0 * n  # a page a minute, each covering 1,000 seconds of the window
        progress.page(500, 1, 1_000 * n)
    assert log.lines[-1].endswith("40.0% of the window; 500 events/min; about 6m 0s left.")
    assert duration(90_000) == "1d 1h"


def test_no_estimate_from_a_sliver_of_a_window_up_to_now() -> None:
    """Sparse data, no end_date: the events stop long before now, so no time left is made up."""
    now = 100_000_000  # three years after the events
    progress, clock, log = progress_with_clock(0, None, now=now)
    for n in range(1, 30):
        clock.now = 6.0 * n  # the budget's pace: a page every 6 s, each covering 2,000 s
        progress.page(999, 1, 2_000 * n)
    progress.page(11, 1, 2_000 * 29 + 30, finished=True)
    lefts = [line.rsplit("; ", 1)[1] for line in log.lines[1:]]
    assert lefts == ["time left unknown yet."] * 29 + ["last page."]
    assert "up to now (1973-03-03T09:46:40Z)" in log.lines[0]  # the injected wall clock


def test_estimate_starts_once_a_tenth_of_the_window_is_done() -> None:
    progress, clock, log = progress_with_clock(0, 100_000)
    for n in range(1, 13):
        clock.now = 6.0 * n
        progress.page(999, 1, 1_000 * n)
    lefts = [line.rsplit("; ", 1)[1] for line in log.lines[1:]]
    assert lefts[:9] == ["time left unknown yet."] * 9
    # 10%: 90 pages left at 6 s each.
    assert lefts[9] == "about 9m 0s left."
    assert lefts[11] == "about 8m 48s left."


def test_the_first_page_does_not_set_the_pace() -> None:
    """start_date years before the account's first event: page 1 spans the empty years."""
    progress, clock, log = progress_with_clock(0, 1_000_000)
    clock.now = 6.0
    progress.page(999, 1, 900_000)  # 90% of the window, all of it empty but the last minutes
    assert log.lines[-1].endswith("; time left unknown yet.")
    for n in range(1, 4):
        clock.now = 6.0 + 60 * n  # then a page a minute, each covering 1,000 s
        progress.page(999, 1, 900_000 + 1_000 * n)
    assert log.lines[-1].endswith("; about 1h 37m left.")  # 97 pages at a minute each, not seconds


def test_summary_says_done_or_stopped() -> None:
    progress, clock, log = progress_with_clock(0, 10_000)
    clock.now = 65.0
    progress.page(10, 0, 100)
    progress.summary(100)
    progress.summary(100, failed=RuntimeError("boom"))
    progress.summary(None, failed=KeyboardInterrupt())
    done, failed, interrupted = log.lines[-3:]
    assert done.startswith("s: done: 10 events, 1 pages,")
    assert done.endswith("1m 5s; bookmark 100 (1970-01-01T00:01:40Z).")
    assert failed.startswith("s: stopped: 10 events, 1 pages,")
    assert failed.endswith("; bookmark 100 (1970-01-01T00:01:40Z). The error follows.")
    assert interrupted.endswith("; bookmark none. Interrupted.")


def test_a_failed_stream_says_stopped_then_the_error(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(1_000, start=START, per_second=1e9))
    sim.faults.extend(["ok", "ok", "403"])

    run = run_tap(tmp_path, window_config(sim))

    assert run.returncode == 1
    lines = [line.split(" | ")[-1] for line in run.stderr.splitlines()]
    assert not any(line.startswith("ticket_events: done") for line in lines)
    (stopped,) = [i for i, line in enumerate(lines) if line.startswith("ticket_events: stopped: ")]
    assert lines[stopped].startswith("ticket_events: stopped: 199 events, 2 pages, 3 requests,")
    assert lines[stopped].endswith(f"bookmark {run.bookmark} ({iso(run.bookmark or 0)}). The error follows.")
    (error,) = run.error_lines
    assert "Zendesk denied access (403" in error
    assert run.stderr.index(lines[stopped]) < run.stderr.index(error)


def test_simulator_without_end_date_gives_no_misleading_estimate(sim: Simulator, tmp_path: Path) -> None:
    """The README's simulator example without end_date: events from 2023 in a window up to now."""
    sim.set_events(make_events(3_000, start=START))

    run = run_tap_in_process(tmp_path, make_config(sim, page_size=500))

    assert run.returncode == 0, run.stderr
    pages = [m for m in map(PAGE_LINE.match, (line.split(" | ")[-1] for line in run.stderr.splitlines())) if m]
    assert len(pages) == 7
    assert [m[7] for m in pages] == ["time left unknown yet"] * 6 + ["last page"]


def test_a_signalled_stream_says_stopped_interrupted(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(6_000, start=START))
    sim.latency = 0.05

    run = run_tap(tmp_path, make_config(sim, page_size=200), signal=signal.SIGTERM, after=500)
    stderr = run.stderr

    assert run.returncode == 128 + signal.SIGTERM, stderr
    lines = [line.split(" | ")[-1] for line in stderr.splitlines()]
    assert not any(line.startswith("ticket_events: done") for line in lines)
    (stopped,) = [line for line in lines if line.startswith("ticket_events: stopped: ")]
    assert stopped.endswith(". Interrupted.")
