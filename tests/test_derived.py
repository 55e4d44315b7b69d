"""ticket_field_history and ticket_comments: rows derived from the ticket events pages.

The expected rows are derived here, independently of the tap's code, from the events the
simulator stores (with their full comments), and compared row for row with what the tap wrote.
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import iso, make_config
from tests.runners import run_tap, run_tap_in_process, selecting
from zendesk_simulator import Simulator, make_events, make_recorded_events

DERIVED = ("ticket_field_history", "ticket_comments")
ALL = ("ticket_events", *DERIVED)
NOT_FIELDS = {"id", "via", "via_reference_id", "event_type", "previous_value", "added_tags", "removed_tags"}


def iso_of(event: dict[str, Any]) -> str | None:
    return iso(event["timestamp"]) if "timestamp" in event else None


def text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def expected_history(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The field history the issue specifies, keyed by row id."""
    rows = {}
    for event in events:
        when = event.get("created_at")
        if when is None and "timestamp" in event:
            when = iso(event["timestamp"])
        for n, child in enumerate(event.get("child_events", [])):
            if child.get("event_type") not in {"Create", "Change"}:
                continue
            changes: list[tuple[str, Any]] = []
            for key, value in child.items():
                if key in NOT_FIELDS or (key == "type" and value == child["event_type"]):
                    continue
                if key == "custom_ticket_fields":
                    changes += [(f"custom_field_{k}", v) for k, v in value.items()]
                else:
                    changes.append((key, value))
            # A child id that is not an integer (malformed) is taken as missing: the column is an integer.
            child_id = child.get("id") if type(child.get("id")) is int else None
            for field, value in changes:
                child_key = f"#{n}" if child_id is None else child_id
                row_id = f"{event['id']}:{child_key}:{field}"
                rows[row_id] = {
                    "id": row_id,
                    "event_id": event["id"],
                    "child_event_id": child_id,
                    "ticket_id": event["ticket_id"],
                    "updater_id": event.get("updater_id"),
                    "field": field,
                    "value": text(value),
                    "previous_value": None if child["event_type"] == "Create" else text(child.get("previous_value")),
                    "change_type": child["event_type"],
                    "changed_at": when,
                    "via": text(child.get("via")),
                    "added_tags": text(child["added_tags"]) if field == "tags" else None,
                    "removed_tags": text(child["removed_tags"]) if field == "tags" else None,
                }
    return rows


def expected_comments(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    rows = {}
    for event in events:
        for child in event.get("child_events", []):
            full = child.get("_full")
            if child.get("event_type") != "Comment":
                continue
            if full is None:
                # Not a simulated sideload: a comment child as Zendesk may send it, taken only when
                # it has an integer id and its texts are text (see make_open_ended_events).
                texts = [child.get(k) for k in ("body", "html_body", "plain_body")]
                if type(child.get("id")) is not int or not any(isinstance(t, str) for t in texts):
                    continue
                if not all(t is None or isinstance(t, str) for t in texts):
                    continue
                attachments = child.get("attachments")
                rows[child["id"]] = {
                    "id": child["id"],
                    "ticket_id": event["ticket_id"],
                    "event_id": event["id"],
                    "author_id": child.get("author_id") if type(child.get("author_id")) is int else None,
                    "public": child.get("public") if isinstance(child.get("public"), bool) else None,
                    "body": texts[0],
                    "html_body": texts[1],
                    "plain_body": texts[2],
                    "attachments": attachments if isinstance(attachments, list) else None,
                    "via": text(child.get("via")),
                    "created_at": child.get("created_at") or event.get("created_at") or iso_of(event),
                }
                continue
            rows[full["id"]] = {
                "id": full["id"],
                "ticket_id": event["ticket_id"],
                "event_id": event["id"],
                "author_id": full["author_id"],
                "public": full["public"],
                "body": full["body"],
                "html_body": full["html_body"],
                "plain_body": full["plain_body"],
                "attachments": full["attachments"],
                "via": text(full["via"]),
                "created_at": full["created_at"],
            }
    return rows


def test_field_history_and_comments_equal_an_independent_derivation(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(3_000, bursts={1_700_002_000: 120})
    sim.set_events(events)
    config = make_config(sim, page_size=250)

    run = run_tap_in_process(tmp_path, config, extra_args=selecting(tmp_path, config, *ALL))

    assert run.returncode == 0, run.stderr
    history = run.records_of("ticket_field_history")
    want = expected_history(events)
    assert len(history) == len(want)  # no row twice, none missing
    assert {row["id"]: row for row in history} == want
    # The varied export had every shape the issue names.
    fields = Counter(row["field"] for row in history)
    assert {"subject", "status", "priority", "type", "tags", "custom_field_360001234567"} <= set(fields)
    assert "custom_field_360041597112" in fields  # from custom_ticket_fields
    assert {row["change_type"] for row in history} == {"Create", "Change"}
    assert any(row["child_event_id"] is None for row in history)
    comments = run.records_of("ticket_comments")
    assert len(comments) == len(expected_comments(events))
    assert {row["id"]: row for row in comments} == expected_comments(events)
    # The comments came from the same pages: include=comment_events without the setting.
    assert all(r.params.get("include") == "comment_events" for r in sim.export_requests())
    assert "comments sideloaded (include=comment_events: ticket_comments is selected)" in run.stderr
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    for stream in DERIVED:
        validator = jsonschema.Draft7Validator(schemas[stream])
        for row in run.records_of(stream):
            validator.validate(row)


def test_no_extra_request_and_a_derived_stream_alone_emits_no_ticket_events(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(2_000)
    sim.set_events(events)
    config = make_config(sim, page_size=300)

    alone = run_tap_in_process(tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_events"))
    requests_alone = len(sim.export_requests())
    assert {m["stream"] for m in alone.messages if m["type"] == "RECORD"} == {"ticket_events"}
    sim.requests.clear()

    history_only = run_tap_in_process(tmp_path, config, extra_args=selecting(tmp_path, config, "ticket_field_history"))

    assert history_only.returncode == 0, history_only.stderr
    assert len(sim.export_requests()) == requests_alone
    assert all("include" not in r.params for r in sim.export_requests())
    assert {m["stream"] for m in history_only.messages if m["type"] in {"RECORD", "SCHEMA"}} == {"ticket_field_history"}
    # The export's bookmark still moves, so the next run resumes instead of starting over.
    assert history_only.bookmark == alone.bookmark
    assert len(history_only.states) >= requests_alone - 1


def test_derived_streams_are_not_selected_by_default(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(300))

    run = run_tap_in_process(tmp_path, make_config(sim))

    assert run.returncode == 0, run.stderr
    streams = {m["stream"] for m in run.messages if m["type"] in {"RECORD", "SCHEMA"}}
    assert not streams & set(DERIVED)


def test_kill_and_resume_with_all_three_streams_loses_and_doubles_nothing(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(12_000, bursts={1_700_004_000: 900})
    sim.set_events(events)
    sim.latency = 0.01
    config = make_config(sim, page_size=500)
    catalog = selecting(tmp_path, config, *ALL)
    rng = random.Random(13)
    upserted: dict[str, dict[Any, dict[str, Any]]] = {stream: {} for stream in ALL}

    def load(messages: list[dict[str, Any]]) -> None:
        """What an upserting target does: one row per primary key, the last one wins."""
        for message in messages:
            if message["type"] == "RECORD":
                row = dict(message["record"])
                key = row["id"]
                previous = upserted[message["stream"]].get(key)
                if message["stream"] != "ticket_events":
                    assert previous in (None, row), "a re-read row changed: its key is not stable"
                upserted[message["stream"]][key] = row

    state: dict[str, Any] | None = None
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL):
        run = run_tap(tmp_path, config, state, signal=sig, after=rng.randint(500, 3_000), extra_args=catalog)
        # Only what a STATE covers counts as delivered; a target may have dropped the rest.
        last_state = max((i for i, m in enumerate(run.messages) if m["type"] == "STATE"), default=-1)
        load(run.messages[: last_state + 1])
        if last_state >= 0:
            state = run.messages[last_state]["value"]
        sim.requests.clear()

    final = run_tap(tmp_path, config, state, extra_args=catalog)
    assert final.returncode == 0, final.stderr
    load(final.messages)

    assert set(upserted["ticket_events"]) == {e["id"] for e in events}
    assert upserted["ticket_field_history"] == expected_history(events)
    assert upserted["ticket_comments"] == expected_comments(events)


def test_a_deselected_property_of_a_derived_stream_is_left_out(sim: Simulator, tmp_path: Path) -> None:
    # Rows skip the SDK's record path only when it could change nothing; deselecting a property
    # must still take it out.
    sim.set_events(make_recorded_events(300))
    config = make_config(sim)
    args = selecting(tmp_path, config, "ticket_field_history")
    catalog = json.loads(Path(args[1]).read_text())
    stream = next(s for s in catalog["streams"] if s["tap_stream_id"] == "ticket_field_history")
    for entry in stream["metadata"]:
        if entry["breadcrumb"] == ["properties", "via"]:
            entry["metadata"]["selected"] = False
    Path(args[1]).write_text(json.dumps(catalog))

    run = run_tap_in_process(tmp_path, config, extra_args=args)

    assert run.returncode == 0, run.stderr
    rows = run.records_of("ticket_field_history")
    assert rows
    assert all("via" not in row and "field" in row for row in rows)
