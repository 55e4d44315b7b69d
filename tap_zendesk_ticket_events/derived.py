"""Flat records derived from one ticket event: its field changes and its comments.

The answers people want from ticket events ("how long was this ticket pending", "who raised the
priority", "every public reply") sit inside ``child_events``; these functions lay them out as
rows, so that one SQL line answers them. Pure functions of one event: the streams that emit
them read no page of their own (see ``streams.py``).

Event types are open-ended (Zendesk documents some 34 and adds more without notice), and some
events are malformed. ``ticket_events`` keeps every one as sent; these functions take only
what they understand and skip the rest quietly, with no line per event: a row is made only
when it fits its stream's schema, so that no strict loader stops on it.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from tap_zendesk_ticket_events.dates import iso

#: Child event kinds that set fields.
FIELD_CHANGE_KINDS = ("Create", "Change")
#: Keys of a child event that describe the child, not a ticket field. ``type`` is one of them
#: only when it repeats the child's kind (the audits API's ``type: "Change"``); otherwise it is
#: the ticket's type (``question``, ``incident``, ...). ``added_tags`` and ``removed_tags``
#: have columns of their own.
ENVELOPE_KEYS = frozenset(
    {"id", "via", "via_reference_id", "event_type", "previous_value", "added_tags", "removed_tags"}
)


_encode = msgspec.json.Encoder().encode


def as_text(value: Any) -> str | None:
    """A field's value as text: strings as they are, anything else as compact JSON text."""
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, dict)):
        return _encode(value).decode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def integer(value: Any) -> int | None:
    """``value`` when it is an integer (not a boolean), else None: id columns are integers."""
    return value if value.__class__ is int else None


def changed_at(event: dict[str, Any]) -> str | None:
    """When the event happened: its ``created_at``, else its ``timestamp`` as a date-time."""
    created = event.get("created_at")
    if isinstance(created, str) and created:
        return created
    timestamp = event.get("timestamp")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return iso(timestamp)
    return None


def field_history(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per field that a ``Create`` or ``Change`` child event of ``event`` sets.

    Custom fields are ``custom_field_<id>`` whichever shape they came in (such a key, or
    ``custom_ticket_fields: {"<id>": value}``). The row ``id`` joins the event id, the child's
    id (or its position among the children, when Zendesk sent no id) and the field: stable
    across runs, so that an upserting target keeps one row when a resumed run reads a boundary
    second again.
    """
    rows: list[dict[str, Any]] = []
    children = event.get("child_events")
    event_id = integer(event.get("id"))
    if not isinstance(children, list) or event_id is None:
        return rows
    # What every row of the event shares, then of the child: each row copies it (in C) and adds
    # its own few keys. This runs for every event, four or five rows each.
    shared = {
        "event_id": event_id,
        "ticket_id": integer(event.get("ticket_id")),
        "updater_id": integer(event.get("updater_id")),
        "changed_at": changed_at(event),
    }
    for position, child in enumerate(children):
        kind = child.get("event_type") if isinstance(child, dict) else None
        if kind not in FIELD_CHANGE_KINDS:
            continue
        child_id = integer(child.get("id"))
        prefix = f"{event_id}:{child_id if child_id is not None else f'#{position}'}:"
        base = {
            **shared,
            "child_event_id": child_id,
            "previous_value": None if kind == "Create" else as_text(child.get("previous_value")),
            "change_type": kind,
            "via": as_text(child.get("via")),
            "added_tags": None,
            "removed_tags": None,
        }
        for field, value in _fields(child, kind):
            row = {**base, "id": prefix + field, "field": field, "value": as_text(value)}
            if field == "tags":
                row["added_tags"] = as_text(child.get("added_tags"))
                row["removed_tags"] = as_text(child.get("removed_tags"))
            rows.append(row)
    return rows


def _fields(child: dict[str, Any], kind: str) -> list[tuple[str, Any]]:
    """The (field, value) pairs a child event sets."""
    pairs: list[tuple[str, Any]] = []
    for key, value in child.items():
        if key in ENVELOPE_KEYS or (key == "type" and value == kind):
            continue
        if key == "custom_ticket_fields" and isinstance(value, dict):
            pairs.extend((f"custom_field_{field_id}", field_value) for field_id, field_value in value.items())
        else:
            pairs.append((key, value))
    return pairs


def comments(event: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per sideloaded comment child event (``include=comment_events``) of ``event``.

    A comment that was not sideloaded carries only ``comment_present``/``comment_public``
    flags and no id of its own, so it makes no row.
    """
    rows: list[dict[str, Any]] = []
    children = event.get("child_events")
    event_id = integer(event.get("id"))
    if not isinstance(children, list) or event_id is None:
        return rows
    for child in children:
        if not isinstance(child, dict) or child.get("event_type") != "Comment":
            continue
        comment_id = integer(child.get("id"))
        texts = [child.get(key) for key in ("body", "html_body", "plain_body")]
        if comment_id is None or not any(isinstance(text, str) for text in texts):
            continue
        if not all(text is None or isinstance(text, str) for text in texts):
            continue  # a comment whose text is not text: not one this stream understands
        public = child.get("public")
        attachments = child.get("attachments")
        created = child.get("created_at")
        rows.append(
            {
                "id": comment_id,
                "ticket_id": integer(event.get("ticket_id")),
                "event_id": event_id,
                "author_id": integer(child.get("author_id")),
                "public": public if isinstance(public, bool) else None,
                "body": texts[0],
                "html_body": texts[1],
                "plain_body": texts[2],
                "attachments": attachments if _objects(attachments) else None,
                "via": as_text(child.get("via")),
                "created_at": created if isinstance(created, str) and created else changed_at(event),
            }
        )
    return rows


def _objects(value: Any) -> bool:
    """True for a list of JSON objects (an empty one too)."""
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)
