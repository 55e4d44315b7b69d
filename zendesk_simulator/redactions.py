"""Redactions, and the ticket comments endpoint that shows what they left.

What a live account showed (API notes, "A live account, recorded in October 2026"):

- A redaction is an audit of its own (``via: "Web service"``) whose only child is
  ``{"event_type": "CommentRedactionEvent", "comment_id": "<string>"}`` or
  ``{"event_type": "AttachmentRedactionEvent", "attachment_id": "<string>"}`` (the latter
  names no comment).
- From then on the export and the comments endpoint send the **current** text, audits made
  before the redaction included: the erased characters become ``▇``, a redacted attachment
  stays listed as ``redacted.txt``, size 1.
- ``GET /api/v2/tickets/{id}/comments?page[size]=100`` answers ``{"comments": [...], "meta":
  {"has_more", "after_cursor", "before_cursor"}, "links": {"prev", "next"}}``; a deleted
  ticket answers 404. It draws on the account-wide limit (``ratelimit-*`` headers), not the
  export's.

``Redactions`` holds what was redacted and when; the ``Simulator`` asks it what is in effect
at its clock, to render pages and comments with the text of that moment.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: What Zendesk puts in place of each erased character.
BLOCK = "\u2587"
#: The ticket comments endpoint (with and without ``.json``).
COMMENTS_PATH = re.compile(r"^/api/v2/tickets/(\d+)/comments(?:\.json)?$")
#: Zendesk's cursor pages hold at most 100 items.
MAX_PAGE_SIZE = 100
REDACTION_VIA = "Web service"
#: Ids of redaction audits and their child events: a range no generated event uses.
FIRST_REDACTION_ID = 9_500_000_000


@dataclass(frozen=True)
class Redaction:
    """One redaction: a comment's text (``text``: what was erased) or an attachment, at ``at``."""

    kind: str
    """``comment`` or ``attachment``."""
    target_id: int
    ticket_id: int
    at: int
    text: str | None
    audit: dict[str, Any]


@dataclass
class Redactions:
    """What was redacted, deleted tickets, and faults of the comments endpoint.

    The endpoint's rate limit is the account-wide one (``Simulator.account_rate_limit_per_minute``).
    """

    done: list[Redaction] = field(default_factory=list)
    deleted_tickets: set[int] = field(default_factory=set)
    faults: deque[str] = field(default_factory=deque)
    """Faults answered to the next comments requests, one each (the export's fault names)."""
    _next_id: int = FIRST_REDACTION_ID

    def new_id(self) -> int:
        self._next_id += 10
        return self._next_id

    def in_effect(self, now: float) -> tuple[Redaction, ...]:
        return tuple(r for r in self.done if r.at <= now)


def find_comment(events: list[dict[str, Any]], comment_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored event holding a sideloadable comment, and that comment (``_full``)."""
    for event in events:
        for child in event.get("child_events", ()):
            full = child.get("_full") if isinstance(child, dict) else None
            if full is not None and full.get("id") == comment_id:
                return event, full
    raise KeyError(f"no comment {comment_id} among the simulator's events")


def find_attachment(events: list[dict[str, Any]], attachment_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored event whose comment lists the attachment, and that comment."""
    for event in events:
        for child in event.get("child_events", ()):
            full = child.get("_full") if isinstance(child, dict) else None
            if full is not None and any(a.get("id") == attachment_id for a in full.get("attachments") or ()):
                return event, full
    raise KeyError(f"no attachment {attachment_id} among the simulator's comments")


def attachment(attachment_id: int, file_name: str = "passport.png", size: int = 48_213) -> dict[str, Any]:
    """An attachment as Zendesk lists it on a comment."""
    return {
        "id": attachment_id,
        "file_name": file_name,
        "content_url": f"https://example.zendesk.com/attachments/token/t{attachment_id}/?name={file_name}",
        "content_type": "image/png" if file_name.endswith(".png") else "application/octet-stream",
        "size": size,
        "inline": False,
        "deleted": False,
        "thumbnails": [],
    }


def redaction_audit(
    redactions: Redactions, *, kind: str, target_id: int, ticket_id: int, at: int, updater_id: int
) -> dict[str, Any]:
    """The audit a redaction adds to the ticket: its only child names what was erased, as a string."""
    audit_id = redactions.new_id()
    child: dict[str, Any] = {
        "id": audit_id + 1,
        "via": REDACTION_VIA,
        "via_reference_id": None,
        "event_type": "CommentRedactionEvent" if kind == "comment" else "AttachmentRedactionEvent",
    }
    child["comment_id" if kind == "comment" else "attachment_id"] = str(target_id)
    return {
        "id": audit_id,
        "ticket_id": ticket_id,
        "timestamp": at,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
        "updater_id": updater_id,
        "via": REDACTION_VIA,
        "system": {"client": "Zendesk", "location": None, "latitude": None, "longitude": None},
        "event_type": "Audit",
        "child_events": [child],
    }


def erase(text: str, secret: str) -> str:
    """``text`` with every non-blank character of each occurrence of ``secret`` made ``▇``."""
    return text.replace(secret, re.sub(r"\S", BLOCK, secret))


def current(comment: dict[str, Any], in_effect: tuple[Redaction, ...]) -> dict[str, Any]:
    """A sideloaded comment as Zendesk sends it now: the redactions in effect applied."""
    mine = [r for r in in_effect if r.kind == "comment" and r.target_id == comment.get("id")]
    attachment_ids = {a.get("id") for a in comment.get("attachments") or ()}
    gone = [r for r in in_effect if r.kind == "attachment" and r.target_id in attachment_ids]
    if not mine and not gone:
        return comment
    out = copy.deepcopy(comment)
    for redaction in mine:
        for key in ("body", "html_body", "plain_body"):
            if isinstance(out.get(key), str):
                out[key] = BLOCK * len(out[key]) if redaction.text is None else erase(out[key], redaction.text)
    for redaction in gone:
        out["attachments"] = [
            {**a, "file_name": "redacted.txt", "content_type": "text/plain", "size": 1,
             "content_url": f"https://example.zendesk.com/attachments/token/t{a['id']}/?name=redacted.txt"}
            if a.get("id") == redaction.target_id
            else a
            for a in out["attachments"]
        ]  # fmt: skip
    return out


def ticket_comments(events: list[dict[str, Any]], ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's comments in the order Zendesk lists them (oldest first), as stored."""
    found = []
    for event in events:
        if event.get("ticket_id") != ticket_id:
            continue
        for child in event.get("child_events", ()):
            full = child.get("_full") if isinstance(child, dict) else None
            if full is not None:
                found.append(full)
    return found


def as_listed(comment: dict[str, Any]) -> dict[str, Any]:
    """A comment as the comments endpoint lists it: no child-event keys, with ``metadata``."""
    listed = {k: v for k, v in comment.items() if k not in {"event_type", "via_reference_id"}}
    listed.setdefault("metadata", {"system": {}, "custom": {}})
    return listed


def cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def offset_of(value: str) -> int | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        offset = decoded["o"]
    except (ValueError, KeyError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 else None


def comments_page(
    comments: list[dict[str, Any]], ticket_id: int, params: dict[str, str], base: str
) -> tuple[int, dict[str, Any]]:
    """One cursor page of a ticket's comments: (status, body)."""
    try:
        size = int(params.get("page[size]", str(MAX_PAGE_SIZE)))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        return 400, {"error": "InvalidPaginationParameter", "description": f"page[size] must be 1..{MAX_PAGE_SIZE}"}
    start = 0
    if "page[after]" in params:
        parsed = offset_of(params["page[after]"])
        if parsed is None:
            return 400, {"error": "InvalidPaginationParameter", "description": "invalid cursor"}
        start = parsed
    chosen = comments[start : start + size]
    end = start + len(chosen)
    has_more = end < len(comments)
    path = f"{base}/api/v2/tickets/{ticket_id}/comments.json?page%5Bsize%5D={size}"
    return 200, {
        "comments": [as_listed(c) for c in chosen],
        "meta": {
            "has_more": has_more,
            "after_cursor": cursor(end) if chosen else None,
            "before_cursor": cursor(start) if chosen else None,
        },
        "links": {
            "prev": f"{path}&page%5Bbefore%5D={cursor(start)}" if start else None,
            "next": f"{path}&page%5Bafter%5D={cursor(end)}" if has_more else None,
        },
    }
