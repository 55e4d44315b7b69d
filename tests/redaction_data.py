"""Test data for redactions: comments that hold what customers should never have written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zendesk_simulator import attachment

#: A card number (Visa's test number) and a phone number, erased in the tests.
CARD = "4111 1111 1111 1111"
PHONE = "+33 6 12 34 56 78"
#: An attachment's file name that must not survive its redaction.
PASSPORT = "passport-jean-dupont.png"


@dataclass
class Planted:
    """Comments planted in generated events: which ticket holds which comments, and the attachments."""

    tickets: dict[int, list[int]] = field(default_factory=dict)
    """Ticket id -> its comment ids, oldest first."""
    events_of: dict[int, int] = field(default_factory=dict)
    """Comment id -> the id of the event (audit) that carried it."""
    attachments: dict[int, int] = field(default_factory=dict)
    """Attachment id -> the comment listing it."""

    @property
    def comment_ids(self) -> list[int]:
        return [c for ids in self.tickets.values() for c in ids]


def plant(
    events: list[dict[str, Any]], *, tickets: int = 3, per_ticket: int = 3, first_ticket: int = 90_001
) -> Planted:
    """Give ``tickets`` tickets ``per_ticket`` comments each holding a card and a phone number, and
    one attachment on the first comment of each ticket (from the generated comments, in order)."""
    planted = Planted()
    with_comments = [e for e in events if any(isinstance(c, dict) and "_full" in c for c in e.get("child_events", ()))]
    assert len(with_comments) >= tickets * per_ticket, "not enough generated comments to plant in"
    for n, event in enumerate(with_comments[: tickets * per_ticket]):
        ticket = first_ticket + n // per_ticket
        event["ticket_id"] = ticket
        full = next(c["_full"] for c in event["child_events"] if isinstance(c, dict) and "_full" in c)
        body = f"My card is {CARD}, call me on {PHONE}."
        full.update(body=body, plain_body=body, html_body=f'<div class="zd-comment"><p>{body}</p></div>')
        planted.tickets.setdefault(ticket, []).append(full["id"])
        planted.events_of[full["id"]] = event["id"]
        if n % per_ticket == 0:
            attachment_id = 7_700_000_000 + n
            full["attachments"] = [attachment(attachment_id, PASSPORT)]
            planted.attachments[attachment_id] = full["id"]
    return planted
