"""Open-ended event types, and every row counted.

Zendesk documents some 34 child event types and adds more without notice; some events are
malformed. ``ticket_events`` keeps every one as sent, the derived streams take what they
understand and skip the rest without failing or a line per event, and each stream's rows are
counted where monitoring looks: the SDK's ``record_count`` METRIC and the summary line.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import jsonschema
import pytest

from tests.conftest import make_config
from tests.runners import catalog_selecting, sync_in_process
from tests.test_derived import expected_comments, expected_history
from zendesk_simulator import Simulator, make_metric_events, make_open_ended_events, render

START = 1_700_000_000
STREAMS = ("ticket_events", "ticket_metric_events", "ticket_field_history", "ticket_comments")
DERIVED = ("ticket_field_history", "ticket_comments")


def record_counts(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """The rows each stream's ``record_count`` METRIC lines add up to."""
    counts: Counter[str] = Counter()
    for record in caplog.records:
        if record.name == "singer_sdk.metrics" and record.args:
            point = record.args[0] if isinstance(record.args, tuple) else record.args
            if (
                str(getattr(point, "metric", "")) in {"record_count", "Metric.RECORD_COUNT"}
                or getattr(getattr(point, "metric", None), "value", None) == "record_count"
            ):
                counts[point.tags["stream"]] += point.value  # type: ignore[attr-defined]
    return counts


@pytest.fixture
def open_ended(sim: Simulator) -> tuple[Simulator, list[dict[str, Any]], list[dict[str, Any]]]:
    events = make_open_ended_events(1_200, start=START, bursts={START + 900: 130})
    metric_events = make_metric_events(300, start=START, seed=29)
    sim.set_events(events)
    sim.set_metric_events(metric_events)
    return sim, events, metric_events


def test_every_event_kept_as_sent_and_derived_streams_skip_what_they_do_not_understand(
    open_ended: tuple[Simulator, list[dict[str, Any]], list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    sim, events, metric_events = open_ended
    config = make_config(sim, page_size=200)

    with caplog.at_level(logging.INFO):
        run = sync_in_process(config, catalog=catalog_selecting(config, *STREAMS))

    assert run.returncode == 0, run.stderr
    # ticket_events: every event, its children exactly as Zendesk sent them (comments sideloaded).
    by_id = {r["id"]: r for r in run.records}
    assert sorted(by_id) == sorted(e["id"] for e in events)
    kinds: Counter[str | None] = Counter()
    for event in events:
        sent = render(event, comments=True)
        record = by_id[event["id"]]
        assert record.get("child_events") == sent.get("child_events")
        assert record.get("ai_metadata") == sent.get("ai_metadata")
        kinds.update(c.get("event_type") for c in sent.get("child_events") or [] if isinstance(c, dict))
    assert {"VoiceComment", "Notification", "AiAgentHandoff", "ChatStartedEvent", None} <= set(kinds)
    # The derived streams: the rows an independent derivation expects, no more.
    history = run.records_of("ticket_field_history")
    comments = run.records_of("ticket_comments")
    assert {r["id"]: r for r in history} == expected_history(events)
    assert len(history) == len(expected_history(events))
    assert {r["id"]: r for r in comments} == expected_comments(events)
    assert {r["change_type"] for r in history} == {"Create", "Change"}
    # Every record of every stream fits the SCHEMA the tap emitted for it.
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    assert set(schemas) == set(STREAMS)
    for stream, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        records = run.records_of(stream)
        assert records, stream
        for record in records:
            validator.validate(record)
    # Metric events in every shape: sla, group_sla, status, deleted, policy ids of both kinds.
    metric = run.records_of("ticket_metric_events")
    assert len(metric) == len(metric_events)
    assert {"sla", "group_sla", "status", "deleted"} <= {key for r in metric for key in r}
    policy_ids = [r[key]["policy"]["id"] for r in metric for key in ("sla", "group_sla") if key in r]
    assert {type(i) for i in policy_ids} == {int, str}
    # Skipped quietly: no warning, and no line per event.
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    tap_lines = [r for r in caplog.records if r.name != "singer_sdk.metrics"]
    assert len(tap_lines) < len(sim.export_requests(None)) + 40


def test_derived_rows_are_counted_in_record_count_metrics_and_the_summary(
    open_ended: tuple[Simulator, list[dict[str, Any]], list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    sim, events, _ = open_ended
    config = make_config(sim, page_size=200)

    with caplog.at_level(logging.INFO):
        run = sync_in_process(config, catalog=catalog_selecting(config, "ticket_events", *DERIVED))

    assert run.returncode == 0, run.stderr
    written = Counter(m["stream"] for m in run.messages if m["type"] == "RECORD")
    assert written["ticket_field_history"] > len(events)
    assert written["ticket_comments"] > 100
    counted = record_counts(caplog)
    for stream in ("ticket_events", *DERIVED):
        assert counted[stream] == written[stream], stream
    (summary,) = [m for m in caplog.messages if m.startswith("ticket_events: done:")]
    for stream in DERIVED:
        found = re.search(rf"; {stream}: ([\d,]+) rows", summary)
        assert found, summary
        assert int(found[1].replace(",", "")) == written[stream]


def test_derived_rows_are_counted_when_ticket_events_is_not_selected(
    open_ended: tuple[Simulator, list[dict[str, Any]], list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    sim, _, _ = open_ended
    config = make_config(sim, page_size=200)

    with caplog.at_level(logging.INFO):
        run = sync_in_process(config, catalog=catalog_selecting(config, "ticket_field_history"))

    assert run.returncode == 0, run.stderr
    rows = len(run.records_of("ticket_field_history"))
    assert rows > 0
    assert not run.records_of("ticket_events")
    assert record_counts(caplog)["ticket_field_history"] == rows
    (summary,) = [m for m in caplog.messages if m.startswith("ticket_events: done:")]
    assert f"; ticket_field_history: {rows:,} rows" in summary
    assert "ticket_comments" not in summary
