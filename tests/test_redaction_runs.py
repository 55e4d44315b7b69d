"""Whole runs of the tap that meet redactions: what is written again, what it costs, resuming.

A first run exports comments that hold a card number and a passport scan; Zendesk then erases
them; the second run meets the redactions and must write every row that held them again. What
an upserting target ends with is worked out by keeping the last row of each primary key.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_config
from tests.redaction_data import CARD, PASSPORT, PHONE, Planted, plant
from tests.runners import TapRun, assert_no_secret, bookmark_of, run_tap_in_process, selecting, tap_command
from zendesk_simulator import Simulator, event_second, make_recorded_events

STREAMS = ("ticket_events", "ticket_comments", "ticket_redactions")


def upserted(*runs: TapRun, stream: str) -> dict[Any, dict[str, Any]]:
    """What a target that upserts on ``id`` holds after loading the runs in order."""
    table: dict[Any, dict[str, Any]] = {}
    for run in runs:
        for record in run.records_of(stream):
            table[record["id"]] = record
    return table


def holding(text: str, *runs: TapRun) -> dict[str, int]:
    """Rows of each stream an upserting target would hold with ``text`` anywhere in them."""
    counts = {}
    for stream in STREAMS:
        counts[stream] = sum(
            text in json.dumps(row, ensure_ascii=False) for row in upserted(*runs, stream=stream).values()
        )
    return counts


class Scenario:
    """Planted comments, a first run, then redactions of every card number and passport."""

    def __init__(self, sim: Simulator, tmp_path: Path, **config: Any) -> None:
        self.sim = sim
        self.tmp_path = tmp_path
        self.events = make_recorded_events(600, start=1_700_000_000, seed=71)
        self.planted: Planted = plant(self.events)
        sim.set_events(self.events)
        self.config = make_config(sim, include_comment_events=True, **config)

    def run(self, state: dict[str, Any] | None = None, streams: tuple[str, ...] = STREAMS) -> TapRun:
        run = run_tap_in_process(
            self.tmp_path, self.config, state, extra_args=selecting(self.tmp_path, self.config, *streams)
        )
        assert run.returncode == 0, run.stderr[-3000:]
        return run

    def redact_all(self, after: int) -> list[int]:
        """Erase the card number of every planted comment and every planted attachment, after ``after``."""
        audits = [self.sim.redact_comment(c, CARD, at=after + 100 + n) for n, c in enumerate(self.planted.comment_ids)]
        audits += [self.sim.redact_attachment(a, at=after + 200 + n) for n, a in enumerate(self.planted.attachments)]
        return audits

    @property
    def audit_seconds(self) -> set[int]:
        """The seconds of the audits that carried the planted comments."""
        audits = set(self.planted.events_of.values())
        return {event_second(e) for e in self.events if e["id"] in audits}

    def rereads(self, since: int = 0) -> list[Any]:
        """Export re-reads sent (per_page=1 requests), after the first ``since`` export requests."""
        return [r for r in self.sim.export_requests()[since:] if r.params.get("per_page") == "1"]


def test_a_later_run_writes_again_every_row_that_held_the_erased_content(sim: Simulator, tmp_path: Path) -> None:
    scene = Scenario(sim, tmp_path)
    first = scene.run()
    assert holding(CARD, first)["ticket_comments"] == len(scene.planted.comment_ids)
    assert holding(CARD, first)["ticket_events"] == len(scene.planted.comment_ids)
    assert holding(PASSPORT, first)["ticket_comments"] == len(scene.planted.attachments)

    redacted = scene.redact_all(first.bookmark or 0)
    exports, comments = len(sim.export_requests()), len(sim.comment_requests())
    second = scene.run(first.states[-1])

    assert holding(CARD, first, second) == dict.fromkeys(STREAMS, 0)
    assert holding(PASSPORT, first, second) == dict.fromkeys(STREAMS, 0)
    assert holding(PHONE, first, second)["ticket_comments"] == len(scene.planted.comment_ids)  # the rest stays
    audits = set(scene.planted.events_of.values())
    assert {r["id"] for r in second.records if r["id"] in audits} == audits  # every audit written again
    rows = upserted(second, stream="ticket_redactions")
    assert sorted(rows) == sorted(a + 1 for a in redacted)
    assert all(row["rewritten"] for row in rows.values())
    assert {r["comment_id"] for r in rows.values() if r["redaction_type"] == "attachment"} == set(
        scene.planted.attachments.values()
    )

    # The cost: one comments request per ticket, one export request per second of redacted audits.
    assert len(sim.comment_requests()) - comments == len(scene.planted.tickets) == 3
    assert len(scene.rereads(exports)) == len(scene.audit_seconds) == 9  # the figures of docs/redactions.md
    assert "; 3 comments requests (account-wide limit), 9 export requests (export budget)." in second.stderr
    # Written again for an older second, nothing went backwards: no sort error, the bookmark at the end.
    values = [s["bookmarks"]["ticket_events"]["replication_key_value"] for s in second.states]
    assert values == sorted(values)
    assert second.bookmark == max(event_second(e) for e in sim.events)
    assert "12 redactions met: rows of 12 written again" in second.stderr


def test_a_first_backfill_rereads_nothing_of_its_own_window(sim: Simulator, tmp_path: Path) -> None:
    """Redacted before the run: every page the run reads already holds the current text."""
    scene = Scenario(sim, tmp_path)
    scene.redact_all(1_700_000_000 + 5_000)
    run = scene.run()
    assert holding(CARD, run) == dict.fromkeys(STREAMS, 0)
    assert scene.rereads() == []
    assert len(sim.comment_requests()) == len(scene.planted.tickets)
    assert all(row["rewritten"] for row in run.records_of("ticket_redactions"))


def test_with_ticket_comments_alone_the_comments_list_is_enough(sim: Simulator, tmp_path: Path) -> None:
    scene = Scenario(sim, tmp_path)
    first = scene.run(streams=("ticket_comments",))
    scene.redact_all(
        bookmark_of(first.states[-1], "ticket_comments")
    )  # its own bookmark: ticket_events is not selected
    second = scene.run(first.states[-1], streams=("ticket_comments",))
    assert holding(CARD, first, second)["ticket_comments"] == 0
    assert holding(PASSPORT, first, second)["ticket_comments"] == 0
    assert scene.rereads() == []  # no export request: no ticket_events record to write


def test_follow_redactions_false_sends_no_reread(sim: Simulator, tmp_path: Path) -> None:
    scene = Scenario(sim, tmp_path, follow_redactions=False)
    first = scene.run()
    scene.redact_all(first.bookmark or 0)
    second = scene.run(first.states[-1])
    assert sim.comment_requests() == []
    assert scene.rereads() == []
    assert holding(CARD, first, second)["ticket_comments"] == len(scene.planted.comment_ids)  # as the setting says
    rows = second.records_of("ticket_redactions")
    assert len(rows) == 12
    assert not any(row["rewritten"] for row in rows)


def test_a_deleted_ticket_costs_one_info_line(sim: Simulator, tmp_path: Path) -> None:
    scene = Scenario(sim, tmp_path)
    first = scene.run()
    scene.redact_all(first.bookmark or 0)
    for ticket in scene.planted.tickets:
        sim.delete_ticket(ticket)
    second = scene.run(first.states[-1])
    assert second.stderr.count("was deleted since its redaction") == 1
    assert "3 tickets deleted since" in second.stderr
    assert scene.rereads() == []
    assert not any(row["rewritten"] for row in second.records_of("ticket_redactions"))


def test_a_failed_reread_fails_the_run_before_the_pages_checkpoint(
    sim: Simulator, tmp_path: Path, waits: list[float]
) -> None:
    scene = Scenario(sim, tmp_path)
    first = scene.run()
    redacted = scene.redact_all(first.bookmark or 0)
    earliest = min(event_second(e) for e in sim.events if e["id"] in redacted)
    sim.redactions.faults.extend(["503"] * 6)
    failed = run_tap_in_process(
        tmp_path, scene.config, first.states[-1], extra_args=selecting(tmp_path, scene.config, *STREAMS)
    )
    assert failed.returncode == 1
    (line,) = failed.error_lines
    assert "Giving up on the comments of ticket" in line
    assert "after repeated failures: 503" in line
    assert all(s["bookmarks"]["ticket_events"]["replication_key_value"] <= earliest for s in failed.states)
    resumed = scene.run(failed.states[-1] if failed.states else first.states[-1])
    assert holding(CARD, first, failed, resumed) == dict.fromkeys(STREAMS, 0)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_killed_during_its_rereads_does_them_again_on_resume(
    sim: Simulator, tmp_path: Path, sig: signal.Signals
) -> None:
    scene = Scenario(sim, tmp_path)
    first = scene.run()
    redacted = scene.redact_all(first.bookmark or 0)
    earliest = min(event_second(e) for e in sim.events if e["id"] in redacted)
    sim.redactions.faults.append("slow:10")  # the first comments request hangs: the kill lands in the re-reads
    killed = run_until_comments_requested(tmp_path, scene, first.states[-1], sig)
    assert killed.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    assert all(s["bookmarks"]["ticket_events"]["replication_key_value"] <= earliest for s in killed.states)
    resumed = scene.run(killed.states[-1] if killed.states else first.states[-1])
    assert holding(CARD, first, killed, resumed) == dict.fromkeys(STREAMS, 0)
    assert holding(PASSPORT, first, killed, resumed) == dict.fromkeys(STREAMS, 0)


def run_until_comments_requested(tmp_path: Path, scene: Scenario, state: dict[str, Any], sig: int) -> TapRun:
    """Start the tap as a process, send ``sig`` once it has asked for a ticket's comments."""
    (tmp_path / "kill-config.json").write_text(json.dumps(scene.config))
    (tmp_path / "kill-state.json").write_text(json.dumps(state))
    args = [
        *tap_command(),
        "--config",
        str(tmp_path / "kill-config.json"),
        "--state",
        str(tmp_path / "kill-state.json"),
    ]
    args += selecting(tmp_path, scene.config, *STREAMS)
    with (tmp_path / "kill.out").open("w") as out, (tmp_path / "kill.err").open("w") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        for _ in range(600):
            if scene.sim.comment_requests() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert scene.sim.comment_requests(), "the tap never asked for a ticket's comments"
        proc.send_signal(sig)
        returncode = proc.wait(timeout=60)
    stdout, stderr = (tmp_path / "kill.out").read_text(), (tmp_path / "kill.err").read_text()
    assert_no_secret(stdout, stderr)
    return TapRun(returncode, stdout, stderr)
