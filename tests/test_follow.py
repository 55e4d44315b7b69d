"""The re-read client and the redaction step, against the simulator (the export loop aside).

The step's writers here are lists: what the step hands to the streams is what is checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.follow import FollowRedactions, Writers
from tap_zendesk_ticket_events.reread import Rereader
from tap_zendesk_ticket_events.streams import TicketEventsStream
from tap_zendesk_ticket_events.tap import TapZendeskTicketEvents
from tests.conftest import make_config
from tests.redaction_data import CARD, PASSPORT, PHONE, Planted, plant
from zendesk_simulator import BLOCK, Simulator, make_events

EXPORT_PARAMS = {"include": "comment_events", "support_type_scope": "all"}
LOG = logging.getLogger("test_follow")


@dataclass
class Run:
    tap: TapZendeskTicketEvents
    reader: Rereader
    planted: Planted
    events: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    redactions: list[dict[str, Any]] = field(default_factory=list)

    def writers(self, *, events: bool = True, comments: bool = True, redactions: bool = True) -> Writers:
        return Writers(
            event=(lambda item, second: self.events.append((item, second))) if events else None,
            comments=self.comments.extend if comments else None,
            redactions=self.redactions.extend if redactions else None,
        )

    def step(self, *, run_from: int = 1_699_000_000, **writers: bool) -> FollowRedactions:
        return FollowRedactions(
            self.reader, self.writers(**writers), run_from=run_from, export_params=EXPORT_PARAMS, logger=LOG
        )


def setup(sim: Simulator, *, per_ticket: int = 3, count: int = 400, **config: Any) -> Run:
    events = make_events(count, seed=91)
    planted = plant(events, per_ticket=per_ticket)
    sim.set_events(events)
    tap = TapZendeskTicketEvents(config=make_config(sim, **config))
    stream = tap.streams["ticket_events"]
    assert isinstance(stream, TicketEventsStream)
    reader = Rereader(stream.requests_session, tap.authenticator, tap.settings, headers=stream.http_headers, logger=LOG)
    return Run(tap, reader, planted)


def audit_of(sim: Simulator, audit_id: int) -> dict[str, Any]:
    return dict(next(e for e in sim.events if e["id"] == audit_id))


# --- the re-read client ------------------------------------------------------------------------


def test_a_tickets_comments_are_read_by_cursor_off_the_export_budget(sim: Simulator) -> None:
    run = setup(sim, per_ticket=120, count=1_200)
    ticket, ids = next(iter(run.planted.tickets.items()))
    sim.redact_comment(ids[110], CARD, at=1_700_900_000)
    comments = run.reader.comments(ticket)
    assert comments is not None
    assert [c["id"] for c in comments] == ids
    assert CARD not in comments[110]["body"]
    assert run.reader.counts.comments_requests == 2  # 100 + 20
    assert run.reader.counts.export_requests == 0
    assert run.tap.throttle.requests == 0, "the comments endpoint drew on the export budget"
    assert [r.params.get("page[size]") for r in sim.comment_requests()] == ["100", "100"]


def test_an_export_second_is_one_request_on_the_export_budget(sim: Simulator) -> None:
    run = setup(sim)
    comment_id = run.planted.comment_ids[0]
    audit = audit_of(sim, run.planted.events_of[comment_id])
    sim.redact_comment(comment_id, CARD, at=1_700_900_000)
    items = run.reader.export_second(audit["timestamp"], EXPORT_PARAMS)
    (again,) = [i for i in items if i["id"] == audit["id"]]
    body = next(c for c in again["child_events"] if c.get("id") == comment_id)["body"]
    assert CARD not in body
    assert BLOCK in body
    assert run.reader.counts.export_requests == run.tap.throttle.requests == 1
    (request,) = sim.export_requests()
    assert request.params == {"start_time": str(audit["timestamp"]), "per_page": "1", **EXPORT_PARAMS}


def test_a_deleted_ticket_is_none_and_a_429_waits_its_retry_after(sim: Simulator, waits: list[float]) -> None:
    run = setup(sim)
    first, second = list(run.planted.tickets)[:2]
    sim.delete_ticket(first)
    assert run.reader.comments(first) is None
    sim.retry_after = 17
    sim.redactions.faults.extend(["429", "503"])
    assert run.reader.comments(second)
    assert waits[0] == 17.0
    assert len(waits) == 2
    assert [r.status for r in sim.comment_requests()] == [404, 429, 503, 200]


@pytest.mark.parametrize(
    ("faults", "line"),
    [
        (["503"] * 6, "Giving up on the comments of ticket 90001 (a redaction's re-read) after repeated failures: 503 ServiceUnavailable"),
        (["reset"] * 6, "Giving up on the comments of ticket 90001 (a redaction's re-read) after 6 tries: ConnectionError talking to http://127.0.0.1:"),
        (["403"], "Zendesk denied access (403 Forbidden: You do not have access)"),
        (["nonjson"] * 6, "after repeated failures: 200 with an unusable body"),
    ],
)  # fmt: skip
def test_a_failed_reread_is_one_line_after_its_retries(
    sim: Simulator, waits: list[float], faults: list[str], line: str
) -> None:
    run = setup(sim)
    sim.redactions.faults.extend(faults)
    with pytest.raises(TapError) as failed:
        run.reader.comments(90_001)
    message = str(failed.value)
    assert line in message
    assert "\n" not in message
    if faults == ["403"]:
        assert "set follow_redactions to false" in message
    assert len(waits) == len(faults) - 1


# --- the step --------------------------------------------------------------------------------


def test_a_comment_redaction_writes_its_audit_again_with_the_current_text(sim: Simulator) -> None:
    run = setup(sim)
    ticket, ids = next(iter(run.planted.tickets.items()))
    first = sim.redact_comment(ids[0], CARD, at=1_700_900_000)
    second = sim.redact_comment(ids[1], PHONE, at=1_700_900_000)
    step = run.step()
    step.page([audit_of(sim, first), audit_of(sim, second)])

    assert sorted(item["id"] for item, _ in run.events) == sorted(run.planted.events_of[i] for i in ids[:2])
    for item, second_of in run.events:
        assert second_of == item["timestamp"]
        (comment,) = [c for c in item["child_events"] if "body" in c]
        assert CARD not in comment["body"] or PHONE not in comment["body"]
    assert run.comments == []  # they come with the events (post_process)
    assert run.reader.counts.comments_requests == 1  # one ticket
    assert run.reader.counts.export_requests == len({item["timestamp"] for item, _ in run.events})
    assert [(r["comment_id"], r["ticket_id"], r["rewritten"]) for r in run.redactions] == [
        (ids[0], ticket, True),
        (ids[1], ticket, True),
    ]
    assert [r["comment_event_id"] for r in run.redactions] == [run.planted.events_of[i] for i in ids[:2]]
    assert step.tally.rewritten == 2
    assert "2 redactions met: rows of 2 written again (2 ticket_events records" in (step.summary() or "")


def test_an_attachment_redaction_finds_its_comment(sim: Simulator) -> None:
    run = setup(sim)
    attachment_id, comment_id = next(iter(run.planted.attachments.items()))
    audit = sim.redact_attachment(attachment_id, at=1_700_900_000)
    run.step(events=False).page([audit_of(sim, audit)])
    (row,) = run.comments  # from the comments list: ticket_events is not written
    assert row["id"] == comment_id
    assert row["event_id"] == run.planted.events_of[comment_id]
    assert row["attachments"][0]["file_name"] == "redacted.txt"
    assert PASSPORT not in str(row)
    assert run.reader.counts.export_requests == 0
    (redaction,) = run.redactions
    assert (redaction["redaction_type"], redaction["attachment_id"], redaction["comment_id"]) == (
        "attachment",
        attachment_id,
        comment_id,
    )


def test_audits_this_run_read_after_the_redaction_are_not_read_again(sim: Simulator) -> None:
    run = setup(sim)
    ids = run.planted.comment_ids
    audit = sim.redact_comment(ids[0], CARD, at=1_700_900_000)
    step = run.step(run_from=1_699_000_000)
    step.served(1_700_900_005)  # the run's first page came after the redaction
    step.page([audit_of(sim, audit)])
    assert run.events == []
    assert run.reader.counts.export_requests == 0
    assert run.redactions[0]["rewritten"] is True
    assert step.tally.current == 1
    # A later run starts after that audit: it was written by an earlier run, so it is read again.
    step = run.step(run_from=1_700_800_000)
    step.served(1_700_900_005)
    step.page([audit_of(sim, audit)])
    assert len(run.events) == 1


def test_deleted_tickets_cost_one_info_line_per_run(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    run = setup(sim)
    audits = []
    for ticket, ids in run.planted.tickets.items():
        audits.append(sim.redact_comment(ids[0], CARD, at=1_700_900_000))
        sim.delete_ticket(ticket)
    step = run.step()
    with caplog.at_level(logging.INFO, logger=LOG.name):
        step.page([audit_of(sim, a) for a in audits[:2]])
        step.page([audit_of(sim, audits[2])])
    lines = [r.getMessage() for r in caplog.records if "deleted since" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("Ticket 90001 was deleted since its redaction (its comments answer 404)")
    assert [r["rewritten"] for r in run.redactions] == [False, False, False]
    assert run.events == []
    assert "3 left, 3 tickets deleted since" in (step.summary() or "")


def test_not_following_writes_the_redaction_rows_only(sim: Simulator) -> None:
    run = setup(sim)
    audit = sim.redact_comment(run.planted.comment_ids[0], CARD, at=1_700_900_000)
    step = FollowRedactions(None, run.writers(), run_from=0, export_params=EXPORT_PARAMS, logger=LOG)
    step.page([audit_of(sim, audit)])
    assert run.events == []
    assert run.comments == []
    assert [r["rewritten"] for r in run.redactions] == [False]
    assert sim.comment_requests() == []
    assert sim.export_requests() == []
