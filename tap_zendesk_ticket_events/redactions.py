"""What a redaction means for the rows the tap wrote: pure rules, free of HTTP and of the SDK.

Zendesk redacts a comment's text, or an attachment, permanently; from then on its export and
its comments endpoint send the **current** text (``▇`` where text was erased, the attachment
listed as ``redacted.txt``), audits made before the redaction included. The rows the tap wrote
before hold the erased content: the ``ticket_comments`` row of the comment, and the
``ticket_events`` record of the audit that carried it (its ``Comment`` child). A target that
upserts on the primary key ends clean when the tap writes both again with the current text.

A redaction arrives as the only child of an audit of its own (API notes, the live account of
October 2026): ``{"event_type": "CommentRedactionEvent", "comment_id": "<string>"}`` or
``{"event_type": "AttachmentRedactionEvent", "attachment_id": "<string>"}``, the latter naming
no comment. The ticket's comments list (``GET /api/v2/tickets/{id}/comments``) names, for each
comment, its ``audit_id`` and every attachment: from it the rules below find the comment, the
audit, and the audit's second, at which the export serves that audit again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tap_zendesk_ticket_events import derived
from tap_zendesk_ticket_events.dates import epoch_of_iso
from tap_zendesk_ticket_events.pages import item_second

#: Child event types of a redaction, and the kind each one erases.
KINDS = {"CommentRedactionEvent": "comment", "AttachmentRedactionEvent": "attachment"}


@dataclass(frozen=True)
class Redaction:
    """One redaction child event, and the audit that carried it."""

    id: int
    """The redaction child event's id (the ``ticket_redactions`` primary key)."""
    event_id: int
    """The redaction audit's id (a ``ticket_events`` id)."""
    ticket_id: int
    kind: str
    """``comment`` or ``attachment``."""
    comment_id: int | None
    attachment_id: int | None
    second: int | None
    """The redaction audit's second: when Zendesk erased the content."""
    redacted_at: str | None
    updater_id: int | None
    via: str | None


def parse_id(value: Any) -> int | None:
    """An id Zendesk sent as an integer or as a numeric string (redaction children use strings)."""
    if value.__class__ is int:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def find(events: list[dict[str, Any]]) -> list[Redaction]:
    """The redactions among the child events of ``events`` (a page's records), in page order.

    A redaction child this rule cannot use (no integer id, no ticket, or no id of what it
    erased) is left out: ``ticket_events`` keeps it as sent, and nothing can be re-read for it.
    """
    found: list[Redaction] = []
    for event in events:
        children = event.get("child_events")
        if not isinstance(children, list):
            continue
        for child in children:
            event_type = child.get("event_type") if isinstance(child, dict) else None
            kind = KINDS.get(event_type) if isinstance(event_type, str) else None
            if kind is None:
                continue
            redaction = _redaction(event, child, kind)
            if redaction is not None:
                found.append(redaction)
    return found


def _redaction(event: dict[str, Any], child: dict[str, Any], kind: str) -> Redaction | None:
    child_id = derived.integer(child.get("id"))
    event_id = derived.integer(event.get("id"))
    ticket_id = derived.integer(event.get("ticket_id"))
    comment_id = parse_id(child.get("comment_id"))
    attachment_id = parse_id(child.get("attachment_id"))
    target = comment_id if kind == "comment" else attachment_id
    if child_id is None or event_id is None or ticket_id is None or target is None:
        return None
    return Redaction(
        id=child_id,
        event_id=event_id,
        ticket_id=ticket_id,
        kind=kind,
        comment_id=comment_id,
        attachment_id=attachment_id,
        second=item_second(event),
        redacted_at=derived.changed_at(event),
        updater_id=derived.integer(event.get("updater_id")),
        via=derived.as_text(event.get("via")),
    )


def locate(redaction: Redaction, comments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The comment (as the comments endpoint lists it) that held what ``redaction`` erased.

    A comment redaction names its comment; an attachment redaction names only the attachment,
    which the comment holding it lists.
    """
    for comment in comments:
        if redaction.kind == "comment":
            if parse_id(comment.get("id")) == redaction.comment_id:
                return comment
            continue
        attachments = comment.get("attachments")
        if isinstance(attachments, list) and any(
            isinstance(a, dict) and parse_id(a.get("id")) == redaction.attachment_id for a in attachments
        ):
            return comment
    return None


def audit_of(comment: dict[str, Any]) -> tuple[int | None, int | None]:
    """The id of the audit (ticket event) that carried ``comment``, and that audit's second.

    The comment is created with its audit, so its ``created_at`` is the audit's second: the
    export serves the audit again from that ``start_time``.
    """
    created = comment.get("created_at")
    second = epoch_of_iso(created) if isinstance(created, str) else None
    return parse_id(comment.get("audit_id")), second


def comment_row(ticket_id: int, comment: dict[str, Any]) -> dict[str, Any] | None:
    """The ``ticket_comments`` row of a listed comment, made by the same rule as from an export page."""
    audit_id, _ = audit_of(comment)
    if audit_id is None:
        return None
    child = {**comment, "event_type": "Comment"}
    rows = derived.comments({"id": audit_id, "ticket_id": ticket_id, "child_events": [child]})
    return rows[0] if rows else None


def already_current(
    audit_second: int, redaction_second: int | None, *, run_from: int, served_since: int | None
) -> bool:
    """True when this run wrote the audit's rows from a page Zendesk served after the redaction.

    ``run_from`` is the run's first ``start_time``: every audit from that second on was written
    by this run. ``served_since`` is when Zendesk served the run's first page (its ``Date``, by
    Zendesk's own clock, so no clock skew enters): every page of the run was served at or after
    it, so a redaction made before it was already applied to every page the run read. A first
    backfill then re-reads nothing for the redactions of its own window.
    """
    if served_since is None or redaction_second is None:
        return False
    return audit_second >= run_from and redaction_second < served_since


def rereads(audits: dict[int, int]) -> dict[int, set[int]]:
    """Audit id -> second, grouped by second: one export request serves every audit of a second."""
    by_second: dict[int, set[int]] = {}
    for audit_id, second in audits.items():
        by_second.setdefault(second, set()).add(audit_id)
    return dict(sorted(by_second.items()))


def redaction_row(redaction: Redaction, comment: dict[str, Any] | None, *, rewritten: bool) -> dict[str, Any]:
    """The ``ticket_redactions`` row: what was erased, where, when and by whom.

    For an attachment, the comment that lists it (and that comment's audit) when the comments
    list was read; ``rewritten`` says whether this run wrote every row holding the erased content
    again (or wrote it after the redaction in the first place).
    """
    comment_id = redaction.comment_id
    audit_id: int | None = None
    if comment is not None:
        comment_id = parse_id(comment.get("id"))
        audit_id, _ = audit_of(comment)
    return {
        "id": redaction.id,
        "event_id": redaction.event_id,
        "ticket_id": redaction.ticket_id,
        "redaction_type": redaction.kind,
        "comment_id": comment_id,
        "attachment_id": redaction.attachment_id,
        "comment_event_id": audit_id,
        "redacted_at": redaction.redacted_at,
        "updater_id": redaction.updater_id,
        "via": redaction.via,
        "rewritten": rewritten,
    }
