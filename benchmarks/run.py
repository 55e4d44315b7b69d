"""Measure the tap against the local simulator and print one table (issue: performance).

    python3 tasks.py bench            # or: .venv/bin/python benchmarks/run.py [--quick]

1. CPU throughput: events/s of the tap and of a plain pass-through (benchmarks/passthrough.py)
   over the same export, without and with comment_events, stdout to /dev/null, no throttle.
2. Rate-limit floor: the simulator enforcing N requests/minute and the tap set to N; then the
   same with another client having spent part of the budget (the simulator answers 429 with
   an exact Retry-After).
3. Peak RSS of the tap at a small and a large export.
4. Requests per 1,000 events at the default page size, and whether any request repeated.
6. The account's budget (benchmarks/budget.py, issue 27): a High Volume backfill with default
   settings against the 30-per-minute floor, today's behaviour beside it, on a virtual clock;
   the same once in real time (not with --quick); a shared account: the 429s received.
5. The derived streams: events/s with ticket_events, ticket_field_history and ticket_comments
   all selected against ticket_events alone (both sideloading comments), over events in the
   recorded shapes, and the peak RSS with all three at a small and a large export.

Nothing here asserts: it prints figures for people to read. Runs take a few minutes, most of
it the rate-limit part, which must wait out real minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import budget  # noqa: E402 - benchmarks/budget.py, beside this script

from zendesk_simulator import (  # noqa: E402
    API_TOKEN,
    EMAIL,
    Simulator,
    SimulatorServer,
    make_events,
    make_recorded_events,
)

START = 1_700_000_000
TAP = [sys.executable, "-m", "tap_zendesk_ticket_events"]
PASS = [sys.executable, str(ROOT / "benchmarks" / "passthrough.py")]

# Runs a command with stdout to /dev/null; prints its wall time and peak RSS (KiB).
MEASURE = """
import resource, subprocess, sys, time, json
t = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[0] + ".err", "w"))
wall = time.perf_counter() - t
print(json.dumps({"code": code, "wall": wall, "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def measure(cmd: list[str], workdir: Path) -> dict[str, Any]:
    script = workdir / "measure.py"
    script.write_text(MEASURE)
    out = subprocess.run([sys.executable, str(script), *cmd], capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{(workdir / 'measure.py.err').read_text()[-2000:]}")
    return result


def tap_config(workdir: Path, sim: Simulator, **settings: Any) -> list[str]:
    config = {
        "api_url": sim.url,
        "email": EMAIL,
        "api_token": API_TOKEN,
        "start_date": "2023-11-14T00:00:00Z",
        "max_requests_per_minute": 1_000_000,
        **settings,
    }
    path = workdir / f"config-{len(list(workdir.glob('config-*')))}.json"
    path.write_text(json.dumps(config))
    return ["--config", str(path)]


def serve(count: int) -> tuple[Simulator, SimulatorServer]:
    sim = Simulator()
    sim.set_events(make_events(count, start=START))
    return sim, SimulatorServer(sim).start()


def throughput(workdir: Path, count: int, comments: bool, rounds: int) -> dict[str, Any]:
    sim, server = serve(count)
    try:
        pass_cmd = [*PASS, sim.url, str(START), *(["--comments"] if comments else [])]
        measure(pass_cmd, workdir)  # warm the simulator's page cache
        tap_cmd = [*TAP, *tap_config(workdir, sim, include_comment_events=comments)]
        tap_walls, pass_walls = [], []
        for _ in range(rounds):
            sim.requests.clear()
            tap_walls.append(measure(tap_cmd, workdir)["wall"])
            tap_requests = list(sim.export_requests())
            pass_walls.append(measure(pass_cmd, workdir)["wall"])
        keys = Counter((r.params["start_time"], r.params["per_page"]) for r in tap_requests)
        return {
            "tap": count / min(tap_walls),
            "pass": count / min(pass_walls),
            "requests": len(tap_requests),
            "repeated": sum(n - 1 for n in keys.values()),
            "events": count,
        }
    finally:
        server.stop()


def catalog_selecting(workdir: Path, config_args: list[str], *streams: str) -> list[str]:
    """``--catalog`` arguments selecting exactly ``streams``, from the tap's own discovery."""
    out = subprocess.run([*TAP, *config_args, "--discover"], capture_output=True, text=True, check=True)
    catalog = json.loads(out.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
    path = workdir / f"catalog-{'-'.join(streams)}.json"
    path.write_text(json.dumps(catalog))
    return ["--catalog", str(path)]


DERIVED = ("ticket_events", "ticket_field_history", "ticket_comments")


def derived_throughput(workdir: Path, count: int, rounds: int) -> dict[str, Any]:
    sim = Simulator()
    sim.set_events(make_recorded_events(count, start=START))
    server = SimulatorServer(sim).start()
    try:
        config = tap_config(workdir, sim, include_comment_events=True)
        alone = [*TAP, *config, *catalog_selecting(workdir, config, "ticket_events")]
        every = [*TAP, *config, *catalog_selecting(workdir, config, *DERIVED)]
        measure(alone, workdir)  # warm the simulator's page cache
        alone_walls, every_walls = [], []
        for _ in range(rounds):
            alone_walls.append(measure(alone, workdir)["wall"])
            every_walls.append(measure(every, workdir)["wall"])
        return {"alone": count / min(alone_walls), "all": count / min(every_walls)}
    finally:
        server.stop()


def derived_rss(workdir: Path, count: int) -> float:
    sim = Simulator()
    sim.set_events(make_recorded_events(count, start=START))
    server = SimulatorServer(sim).start()
    try:
        config = tap_config(workdir, sim)
        return float(measure([*TAP, *config, *catalog_selecting(workdir, config, *DERIVED)], workdir)["rss"]) / 1024
    finally:
        server.stop()


def peak_rss(workdir: Path, count: int) -> float:
    sim, server = serve(count)
    try:
        return float(measure([*TAP, *tap_config(workdir, sim)], workdir)["rss"]) / 1024
    finally:
        server.stop()


def rate_floor(workdir: Path, per_minute: int, pages: int, other_client: int) -> dict[str, Any]:
    """Export ``pages`` pages of 10 events with the simulator and the tap both at ``per_minute``."""
    sim = Simulator(rate_limit_per_minute=per_minute)
    # One event per second: each page of 10 re-delivers its boundary second, so 9 new a page.
    sim.set_events(make_events(pages * 9 + 1, start=START, per_second=1e9))
    server = SimulatorServer(sim).start()
    try:
        cmd = [*TAP, *tap_config(workdir, sim, page_size=10, max_requests_per_minute=per_minute)]
        sim.other_client(other_client)
        wall = measure(cmd, workdir)["wall"]
        log = (workdir / "measure.py.err").read_text()
        requests = sim.export_requests()
        ok = [r for r in requests if r.status == 200]
        waiting_lines = [line for line in log.splitlines() if "waiting " in line]
        waits = [float(line.split("waiting ")[1].split(" s")[0]) for line in waiting_lines]
        # Seconds one request takes here, from the first burst (before any wait).
        burst = ok[: min(len(ok), per_minute - other_client)]
        service = (burst[-1].at - burst[0].at) / max(1, len(burst) - 1)
        ideal = earliest_finish(len(ok), per_minute, other_client, service)
        asked = sum(r.retry_after or 0 for r in requests if r.status == 429)
        retry_waits = [w for line, w in zip(waiting_lines, waits, strict=True) if "Retry-After" in line]
        return {
            "pages": len(ok),
            "floor": len(ok) / per_minute * 60,
            "ideal": ideal,
            "wall": wall,
            "429": sum(1 for r in requests if r.status == 429),
            "waited": sum(waits),
            "retry_after_asked": asked,
            "retry_after_waited": sum(retry_waits),
        }
    finally:
        server.stop()


def earliest_finish(pages: int, per_minute: int, other_client: int, service: float = 0.0) -> float:
    """When a server with a sliding one-minute window could admit the last of ``pages``
    requests sent back to back, each taking ``service`` seconds, another client having
    spent ``other_client`` of the budget at t=0."""
    admitted = [0.0] * other_client
    t = -service
    for _ in range(pages):
        t += service
        recent = sorted(a for a in admitted if a > t - 60)
        if len(recent) >= per_minute:
            t = max(t, recent[-per_minute] + 60)
        admitted.append(t)
    return t + service


def real_high_volume(workdir: Path, pages: int) -> dict[str, Any]:
    """A High Volume account (30 a minute, announced) and the tap with default budget settings, in real time."""
    sim = Simulator(rate_limit_per_minute=budget.HIGH_VOLUME)
    sim.set_events(budget.events_for(pages))
    server = SimulatorServer(sim).start()
    try:
        config = json.loads(Path(tap_config(workdir, sim, page_size=budget.PAGE_SIZE)[1]).read_text())
        del config["max_requests_per_minute"]
        path = workdir / "config-default-budget.json"
        path.write_text(json.dumps(config))
        wall = measure([*TAP, "--config", str(path)], workdir)["wall"]
        sent = sim.export_requests(None)
        ok = sum(1 for r in sent if r.status == 200)
        return {"pages": ok, "wall": wall, "floor": budget.floor(ok, budget.HIGH_VOLUME), "429": len(sent) - ok}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the tap against the local simulator.")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    parser.add_argument("--only", choices=["budget"], help="run only this part")
    args = parser.parse_args()
    if args.only == "budget":
        print_rows(budget_rows(quick=args.quick))
        return
    big, small, large, rounds = (100_000, 20_000, 500_000, 3) if not args.quick else (5_000, 2_000, 10_000, 1)
    per_minute, pages = (600, 700) if not args.quick else (60, 70)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"Benchmark of tap-zendesk-ticket-events, {time.strftime('%Y-%m-%d')}, {big:,} events", flush=True)
        plain = throughput(workdir, big, comments=False, rounds=rounds)
        print(f"  throughput without comments: {plain['tap']:,.0f} vs {plain['pass']:,.0f} events/s", flush=True)
        with_comments = throughput(workdir, big, comments=True, rounds=rounds)
        print(f"  throughput with comments: {with_comments['tap']:,.0f} vs {with_comments['pass']:,.0f}", flush=True)
        rss_small, rss_large = peak_rss(workdir, small), peak_rss(workdir, large)
        print(f"  peak RSS: {rss_small:.0f} MiB / {rss_large:.0f} MiB", flush=True)
        derived = derived_throughput(workdir, big, rounds)
        print(f"  all three streams: {derived['all']:,.0f} vs ticket_events alone {derived['alone']:,.0f}", flush=True)
        derived_small, derived_large = derived_rss(workdir, small), derived_rss(workdir, large)
        print(f"  peak RSS, all three streams: {derived_small:.0f} MiB / {derived_large:.0f} MiB", flush=True)
        alone = rate_floor(workdir, per_minute, pages, other_client=0)
        print(f"  rate floor alone: {alone}", flush=True)
        shared = rate_floor(workdir, per_minute, pages, other_client=per_minute // 2)
        print(f"  rate floor shared: {shared}", flush=True)

    rows = [
        (
            "CPU: events/s, no comments (tap / pass-through)",
            f"{plain['tap']:,.0f} / {plain['pass']:,.0f}",
            f"{plain['tap'] / plain['pass']:.2f}x",
            ">= 0.70x",
        ),
        (
            "CPU: events/s, comment_events (tap / pass-through)",
            f"{with_comments['tap']:,.0f} / {with_comments['pass']:,.0f}",
            f"{with_comments['tap'] / with_comments['pass']:.2f}x",
            ">= 0.70x",
        ),
        (
            f"Rate floor: {alone['pages']} pages at {per_minute}/min (wall / P/N floor)",
            f"{alone['wall']:.1f} s / {alone['floor']:.1f} s",
            f"{alone['wall'] / alone['floor']:.2f}x",
            "<= 1.05x",
        ),
        ("Rate floor: 429s drawn", str(alone["429"]), "", "0"),
        (
            f"Shared budget: other client spent {per_minute // 2} first (wall / earliest possible)",
            f"{shared['wall']:.1f} s / {shared['ideal']:.1f} s",
            f"{shared['wall'] / max(shared['ideal'], 1e-9):.2f}x",
            "~1.0x (start-up aside)",
        ),
        (
            "Shared budget: 429s drawn; Retry-After asked / waited",
            f"{shared['429']}; {shared['retry_after_asked']:.0f} s / {shared['retry_after_waited']:.1f} s",
            "",
            "waited = asked",
        ),
        (
            f"Peak RSS: {small:,} vs {large:,} events",
            f"{rss_small:.0f} MiB / {rss_large:.0f} MiB",
            f"{rss_large / rss_small:.2f}x",
            "<= 1.20x, < 100 MiB",
        ),
        (
            f"Requests per 1,000 events (page_size 1000, {plain['events']:,} events)",
            f"{plain['requests']} requests",
            f"{plain['requests'] / (plain['events'] / 1000):.3f}",
            "1 + final",
        ),
        ("Requests repeated without a failure", str(plain["repeated"] + with_comments["repeated"]), "", "0"),
        (
            "Derived streams: events/s, all three selected / ticket_events alone",
            f"{derived['all']:,.0f} / {derived['alone']:,.0f}",
            f"{derived['all'] / derived['alone']:.2f}x",
            ">= 0.50x",
        ),
        (
            f"Peak RSS, all three streams: {small:,} vs {large:,} events",
            f"{derived_small:.0f} MiB / {derived_large:.0f} MiB",
            f"{derived_large / derived_small:.2f}x",
            "<= 1.20x",
        ),
    ]
    rows += budget_rows(quick=args.quick)
    print_rows(rows)


def budget_rows(*, quick: bool) -> list[tuple[str, str, str, str]]:
    rows = budget.run(quick=quick)
    if not quick:
        with tempfile.TemporaryDirectory() as tmp:
            real = real_high_volume(Path(tmp), 61)
        print(f"  High Volume in real time: {real}", flush=True)
        rows.append(
            (
                f"High Volume backfill, default settings, real time: {real['pages']} pages (wall / floor)",
                f"{real['wall']:.1f} s / {real['floor']:.1f} s; {real['429']} 429s",
                f"{real['wall'] / real['floor']:.2f}x",
                "<= 1.05x",
            )
        )
    return rows


def print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    print()
    print("| Measure | Figures | Ratio | Target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
