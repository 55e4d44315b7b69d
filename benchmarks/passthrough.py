"""The floor of any Python tap's cost: the same requests, one parse per page, one RECORD line
per event, and nothing else (no schema, no state, no dedupe beyond what paging needs).

Usage: python benchmarks/passthrough.py BASE_URL START_TIME [--comments] > /dev/null
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from zendesk_simulator import API_TOKEN, EMAIL


def main() -> None:
    base, start = sys.argv[1], int(sys.argv[2])
    comments = "--comments" in sys.argv
    session = requests.Session()
    session.auth = (f"{EMAIL}/token", API_TOKEN)
    out = sys.stdout
    while True:
        params: dict[str, str | int] = {"start_time": start, "per_page": 1000}
        if comments:
            params["include"] = "comment_events"
        body = session.get(f"{base}/api/v2/incremental/ticket_events.json", params=params, timeout=60).json()
        for event in body["ticket_events"]:
            out.write(json.dumps({"type": "RECORD", "stream": "ticket_events", "record": event}))
            out.write("\n")
        if body["end_of_stream"]:
            break
        end = body["end_time"]
        start = end + 1 if end == start else end


if __name__ == "__main__":
    main()
