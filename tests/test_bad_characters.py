"""Text that is not valid Unicode: one bad character never stops an export (issue 23, point 3).

A lone surrogate escape (``\\ud83d``, half an emoji cut by some mail client) or one invalid
UTF-8 byte in a page made the fast decoder refuse the whole page; retried five times, it ended
the run, and every later run stopped at the same page.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tap_zendesk_ticket_events.decoding import REPLACEMENT, decode_body
from tests.conftest import make_config
from tests.runners import run_tap_in_process, selecting
from zendesk_simulator import Simulator, make_events

CUT_EMOJI = "\ud83d"  # served as the JSON escape \ud83d
INVALID_BYTE = "\udcff"  # served as the raw byte 0xff (see zendesk_simulator.envelopes.as_sent)


def with_comment_text(event: dict[str, Any], text: str) -> int:
    """Put ``text`` into the event's first sideloaded comment; its id."""
    comment = next(child["_full"] for child in event["child_events"] if "_full" in child)
    comment["body"] = comment["plain_body"] = text
    comment_id: int = comment["id"]
    return comment_id


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"ticket_events": [{"id": 1, "body": "ok \\u00e9"}]}', ([], "ok \u00e9")),
        (b'{"ticket_events": [{"id": 1, "body": "cut \\ud83d here"}]}', ([1], f"cut {REPLACEMENT} here")),
        (b'{"ticket_events": [{"id": 2, "body": "byte \xff here"}]}', ([2], f"byte {REPLACEMENT} here")),
        (b'{"ticket_events": [{"id": 3, "body": "pair \\ud83d\\ude00"}]}', ([], "pair \U0001f600")),
    ],
)
def test_decode_body_repairs_only_what_is_not_unicode(content: bytes, expected: tuple[list[int], str]) -> None:
    decoded = decode_body(content, "ticket_events")
    assert isinstance(decoded.body, dict)
    assert (decoded.repaired_ids, decoded.body["ticket_events"][0]["body"]) == expected


@pytest.mark.parametrize("content", [b'{"ticket_events": [{"id": 1', b"<html>busy</html>", b'{"a": NaN}'])
def test_decode_body_still_refuses_what_is_no_json(content: bytes) -> None:
    with pytest.raises(ValueError):  # msgspec.DecodeError is a ValueError: the caller retries it
        decode_body(content, "ticket_events")


def test_a_cut_emoji_and_an_invalid_byte_are_replaced_and_the_export_goes_on(
    sim: Simulator, tmp_path: Path, waits: list[float]
) -> None:
    events = make_events(600)
    commented = [e for e in events if any("_full" in c for c in e.get("child_events", []))]
    cut, invalid = commented[100], commented[200]
    cut_comment = with_comment_text(cut, f"Merci {CUT_EMOJI}")
    invalid_comment = with_comment_text(invalid, f"Caf{INVALID_BYTE} ferm\u00e9")
    sim.set_events(events)
    config = make_config(sim, page_size=100)

    run = run_tap_in_process(
        tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events", "ticket_comments")
    )

    assert run.returncode == 0, run.stderr
    assert Counter(run.ids) == Counter(e["id"] for e in events)
    comments = {row["id"]: row for row in run.records_of("ticket_comments")}
    assert comments[cut_comment]["body"] == f"Merci {REPLACEMENT}"
    assert comments[invalid_comment]["plain_body"] == f"Caf{REPLACEMENT} ferm\u00e9"
    assert waits == []  # never retried
    starts = [r.params["start_time"] for r in sim.export_requests()]
    assert len(starts) == len(set(starts))  # no page asked twice
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line and "U+FFFD" in line]
    assert len(warnings) == 1, run.stderr  # one line per run, naming the first event
    assert f"event {cut['id']}" in warnings[0]
    assert run.bookmark == max(e["timestamp"] for e in events)
