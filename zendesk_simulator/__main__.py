"""``python -m zendesk_simulator``: a local Zendesk to try the tap on, as the README describes.

It serves ticket events (and metric events) on loopback, prints a ready ``config.json`` for the
tap (API token) and the OAuth settings, and runs until Ctrl-C. Options choose the dialect, the
shapes, injected faults and 429s, the account's export budget (High Volume, another client's
share), the OAuth token lifetime and the share of AI-agent tickets: see ``--help``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque

from zendesk_simulator.data import (
    event_second,
    make_events,
    make_metric_events,
    make_open_ended_events,
    make_recorded_events,
    pick_ai_agent_tickets,
)
from zendesk_simulator.envelopes import Simulator
from zendesk_simulator.faults import FAULTS, HIGH_VOLUME
from zendesk_simulator.server import POLL_SECONDS, SimulatorServer

SHAPES = {"documented": make_events, "recorded": make_recorded_events, "open-ended": make_open_ended_events}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m zendesk_simulator", description=(__doc__ or "").splitlines()[0])
    parse.add_argument("--events", type=int, default=5000, help="ticket events to serve (5000)")
    parse.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parse.add_argument("--start", type=int, default=1_700_000_000, help="epoch second of the first event")
    parse.add_argument(
        "--dialect",
        choices=["documented", "recorded", "metric-example"],
        default="documented",
        help="the envelope: documented (end_of_stream), recorded (no end_of_stream, count = per_page), "
        "metric-example (count, end_time, next_page only)",
    )
    parse.add_argument(
        "--shapes",
        choices=sorted(SHAPES),
        default="documented",
        help="the events' shapes: documented, recorded (every variation recorded from live accounts), "
        "open-ended (recorded, plus undocumented and malformed child events)",
    )
    parse.add_argument(
        "--ai-agent-share",
        type=float,
        default=0.1,
        help="share of tickets handled by an AI agent alone, served only with support_type_scope all or ai_agent",
    )
    parse.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        metavar="FAULT",
        help=f"answer the next export request with this fault (repeat for more, in order): {', '.join(sorted(FAULTS))}",
    )
    parse.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="the account's export requests per minute, announced on every export answer, then 429 (none)",
    )
    parse.add_argument(
        "--high-volume",
        action="store_true",
        help=f"the High Volume add-on: --rate-limit {HIGH_VOLUME}",
    )
    parse.add_argument(
        "--other-client",
        type=int,
        default=0,
        metavar="N",
        help="export requests another client of the account spends at the start of every minute (0)",
    )
    parse.add_argument("--retry-after", type=int, default=60, help="Retry-After of the 429s and 503s (60)")
    parse.add_argument("--latency", type=float, default=0.0, help="seconds every export answer takes (0)")
    parse.add_argument(
        "--oauth-token-lifetime", type=float, default=1800, help="expires_in of each OAuth access token, seconds (1800)"
    )
    return parse


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sim = Simulator(dialect=args.dialect, latency=args.latency, retry_after=args.retry_after)
    if args.high_volume and args.rate_limit not in {None, HIGH_VOLUME}:
        parser().error(f"--high-volume is --rate-limit {HIGH_VOLUME}: give one of them")
    sim.rate_limit_per_minute = HIGH_VOLUME if args.high_volume else args.rate_limit
    if args.other_client and sim.rate_limit_per_minute is None:
        parser().error("--other-client needs a budget to share: give --rate-limit N or --high-volume")
    sim.other_client_per_minute = args.other_client
    sim.faults = deque(args.fault)
    sim.oauth.token_lifetime = args.oauth_token_lifetime
    events = SHAPES[args.shapes](args.events, start=args.start)
    sim.set_ai_agent_tickets(pick_ai_agent_tickets(events, args.ai_agent_share))
    sim.set_events(events)
    sim.set_metric_events(make_metric_events(args.events // 5, start=args.start))
    server = SimulatorServer(sim, args.port)
    seconds = [event_second(e) for e in events]
    first, last = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (min(seconds), max(seconds)))
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(args.start))
    # The minute after the last event: without end_date a window runs up to now, years of
    # it empty, and the progress lines' share done and time left mean little.
    after = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(max(seconds) // 60 * 60 + 60))
    print(f"Zendesk simulator at {server.url} with {args.events} ticket events ({args.shapes} shapes)", flush=True)
    print(f"events from {first} to {last} (and {args.events // 5} metric events)", flush=True)
    ai_events = sum(e.get("ticket_id") in sim.ai_agent_tickets for e in events)
    print(
        f"{len(sim.ai_agent_tickets)} AI-agent tickets ({ai_events} events), served only with "
        "support_type_scope 'all' or 'ai_agent'",
        flush=True,
    )
    if args.fault or sim.rate_limit_per_minute:
        budget = sim.rate_limit_per_minute or "none"
        other = f", {args.other_client} of each minute spent by another client" if args.other_client else ""
        print(f"faults queued: {args.fault or 'none'}; budget: {budget} requests/minute{other}", flush=True)
    config = {"api_url": server.url, "email": sim.email, "api_token": sim.api_token}
    config.update(start_date=day, end_date=after)
    print(f"config.json for the tap: {json.dumps(config)}", flush=True)
    oauth = {
        "api_url": server.url,
        "refresh_token": sim.oauth.issue_tokens()[1],
        "client_id": sim.oauth.client_id,
        "client_secret": sim.oauth.client_secret,
        "start_date": day,
        "end_date": after,
    }
    print(f"OAuth config.json (tokens live {args.oauth_token_lifetime:g} s): {json.dumps(oauth)}", flush=True)
    try:
        server.serve_forever(POLL_SECONDS)
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
