"""Following redactions: for each page, write again every row that held what Zendesk erased.

The export loop hands each page's records to ``FollowRedactions.page`` before the page's
checkpoint. For every redaction child on the page it:

1. lists the ticket's comments (``reread.Rereader.comments``: the account-wide limit), once per
   ticket and page, to find the redacted comment, or the comment listing a redacted attachment,
   and the audit that carried it;
2. when ``ticket_events`` is written, re-reads that audit's second of the export (one export
   request per second, whatever number of audits it holds) and writes the audit again with its
   current child events; the ``ticket_comments`` row comes with it, by the usual rule;
   otherwise writes the ``ticket_comments`` row from the listed comment (no export request);
3. writes the ``ticket_redactions`` rows.

Nothing is re-read for an audit this run already wrote from a page Zendesk served after the
redaction (``redactions.already_current``): a first backfill costs no export request for the
redactions of its own window. A ticket deleted since (404) has nothing to re-read: one INFO line
per run, and its rows are counted. Any other failure of a re-read ends the run (``reread.py``),
before the page's checkpoint, so the resumed run reads the page and does its re-reads again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_zendesk_ticket_events import redactions
from tap_zendesk_ticket_events.pages import item_second

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    from tap_zendesk_ticket_events.redactions import Redaction
    from tap_zendesk_ticket_events.reread import Rereader


@dataclass(frozen=True)
class Writers:
    """Where rewritten rows go; None for a stream that is not selected."""

    event: Callable[[dict[str, Any], int], None] | None
    """A re-read ticket event and its second: written as ``ticket_events`` with its derived rows."""
    comments: Callable[[list[dict[str, Any]]], None] | None
    """``ticket_comments`` rows made from listed comments (when no event is written)."""
    redactions: Callable[[list[dict[str, Any]]], None] | None
    """``ticket_redactions`` rows."""


@dataclass
class Tally:
    """What the run did about redactions, for its summary line."""

    redactions: int = 0
    rewritten: int = 0
    """Redactions whose rows were written again."""
    current: int = 0
    """Redactions whose rows this run had already written after the redaction."""
    events: int = 0
    """``ticket_events`` records written again."""
    comment_rows: int = 0
    """``ticket_comments`` rows written again from listed comments."""
    left: int = 0
    """Redactions whose rows keep the erased content (ticket deleted, comment or audit not found)."""
    deleted_tickets: set[int] = field(default_factory=set)


@dataclass
class _Pending:
    """An audit to write again, and what depends on it."""

    second: int
    ticket_id: int
    comment: dict[str, Any]
    waiting: list[Redaction] = field(default_factory=list)


class FollowRedactions:
    """The step after each page's records: the re-reads of the page's redactions."""

    def __init__(
        self,
        reader: Rereader | None,
        writers: Writers,
        *,
        run_from: int,
        export_params: Mapping[str, Any],
        logger: logging.Logger,
    ) -> None:
        """``reader`` None: redactions are not followed (only ``ticket_redactions`` rows are written)."""
        self._reader = reader
        self._writers = writers
        self._run_from = run_from
        self._export_params = dict(export_params)
        self._logger = logger
        self._served_since: int | None = None
        self.tally = Tally()

    def served(self, at: int | None) -> None:
        """Zendesk served a page of this run's export at ``at`` (its ``Date``); the first one counts."""
        if self._served_since is None and at is not None:
            self._served_since = at

    def page(self, records: list[dict[str, Any]]) -> None:
        """Follow the redactions among a page's records (before the page's checkpoint)."""
        found = redactions.find(records)
        if found:
            self.follow(found)

    def follow(self, found: list[Redaction]) -> None:
        """Follow redactions found on one page (``redactions.find``)."""
        self.tally.redactions += len(found)
        if self._reader is None:
            self._write_redaction_rows([redactions.redaction_row(r, None, rewritten=False) for r in found])
            return
        located: dict[int, dict[str, Any]] = {}
        pending: dict[int, _Pending] = {}
        done: set[int] = set()
        for ticket_id, group in _by_ticket(found).items():
            comments = self._reader.comments(ticket_id)
            if comments is None:
                self._deleted(ticket_id, len(group))
                continue
            for redaction in group:
                comment = redactions.locate(redaction, comments)
                if comment is None:
                    self._left(redaction, "which the ticket's comments do not list")
                    continue
                located[redaction.id] = comment
                audit_id, second = redactions.audit_of(comment)
                if audit_id is None or second is None:
                    self._left(redaction, "whose comment names no audit or time")
                elif redactions.already_current(
                    second, redaction.second, run_from=self._run_from, served_since=self._served_since
                ):
                    self.tally.current += 1
                    done.add(redaction.id)
                else:
                    pending.setdefault(audit_id, _Pending(second, ticket_id, comment)).waiting.append(redaction)
        done |= self._rewrite(pending)
        self._write_redaction_rows(
            [redactions.redaction_row(r, located.get(r.id), rewritten=r.id in done) for r in found]
        )

    def _rewrite(self, pending: dict[int, _Pending]) -> set[int]:
        """Write the pending audits' rows again; the ids of the redactions fully rewritten."""
        assert self._reader is not None
        written: set[int] = set()
        if self._writers.event is not None:
            seconds = redactions.rereads({audit_id: p.second for audit_id, p in pending.items()})
            for second, audit_ids in seconds.items():
                for item in self._reader.export_second(second, self._export_params):
                    item_id = item.get("id")
                    if item_id in audit_ids and item_id not in written:
                        self._writers.event(item, item_second(item) or second)
                        written.add(item_id)
                        self.tally.events += 1
        rows = []
        done: set[int] = set()
        for audit_id, audit in pending.items():
            if audit_id in written:
                done |= {r.id for r in audit.waiting}
                continue
            if self._writers.event is not None:
                for redaction in audit.waiting:
                    self._left(redaction, f"whose audit {audit_id} the export did not serve again at its second")
            row = redactions.comment_row(audit.ticket_id, audit.comment)
            if row is not None:
                rows.append(row)
                if self._writers.event is None:
                    done |= {r.id for r in audit.waiting}
        if rows and self._writers.comments is not None:
            self._writers.comments(rows)
            self.tally.comment_rows += len(rows)
        self.tally.rewritten += len(done)
        return done

    def _deleted(self, ticket_id: int, count: int) -> None:
        if not self.tally.deleted_tickets:
            self._logger.info(
                "Ticket %d was deleted since its redaction (its comments answer 404): nothing to re-read; rows "
                "written before keep what it erased (ticket_redactions lists it). Later deleted tickets of this "
                "run are counted in the redactions line at its end.",
                ticket_id,
            )
        self.tally.deleted_tickets.add(ticket_id)
        self.tally.left += count

    def _left(self, redaction: Redaction, why: str) -> None:
        target = (
            f"comment {redaction.comment_id}"
            if redaction.kind == "comment"
            else f"attachment {redaction.attachment_id}"
        )
        self._logger.warning(
            "Redaction %d of ticket %d erased %s, %s: rows written before may keep what it erased "
            "(ticket_redactions lists it).",
            redaction.id,
            redaction.ticket_id,
            target,
            why,
        )
        self.tally.left += 1

    def _write_redaction_rows(self, rows: list[dict[str, Any]]) -> None:
        if self._writers.redactions is not None:
            self._writers.redactions(rows)

    def summary(self) -> str | None:
        """The run's redactions line; None when it met none."""
        tally = self.tally
        if not tally.redactions:
            return None
        if self._reader is None:
            return f"{tally.redactions} redactions met, not followed (follow_redactions, or no comment text written)."
        counts = self._reader.counts
        deleted = f", {len(tally.deleted_tickets)} tickets deleted since" if tally.deleted_tickets else ""
        return (
            f"{tally.redactions} redactions met: rows of {tally.rewritten} written again "
            f"({tally.events} ticket_events records, {tally.comment_rows} ticket_comments rows from comments lists), "
            f"{tally.current} already written after the redaction, {tally.left} left{deleted}; "
            f"{counts.comments_requests} comments requests (account-wide limit), "
            f"{counts.export_requests} export requests (export budget)."
        )


def _by_ticket(found: list[Redaction]) -> dict[int, list[Redaction]]:
    grouped: dict[int, list[Redaction]] = {}
    for redaction in found:
        grouped.setdefault(redaction.ticket_id, []).append(redaction)
    return grouped
