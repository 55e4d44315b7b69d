"""Realistic data: ticket events and metric events in the shapes Zendesk really sends.

``make_events`` builds the documented shapes (and a few of the documented sample's metric-event
shape); ``make_recorded_events`` reshapes them into every variation recorded from live accounts
(``custom_ticket_fields``, ``via: {}``, ``metadata: {}``, string ``organization_id``, children
without ``id``, items with ``time`` only, ``updater_id: -1`` without ``created_at``);
``make_open_ended_events`` mixes undocumented and malformed child events in;
``pick_ai_agent_tickets`` makes some tickets AI-agent tickets.
"""

from __future__ import annotations

import calendar
import random
import time
from typing import Any


def event_second(event: dict[str, Any]) -> int:
    """A stored ticket event's second: ``timestamp``, else its ISO ``time`` or ``created_at``."""
    if "timestamp" in event:
        return int(event["timestamp"])
    text = event.get("time") or event["created_at"]
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def metric_epoch(event: dict[str, Any]) -> int:
    """A metric event's second: Zendesk gives it only as the ISO ``time``."""
    return calendar.timegm(time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ"))


METRICS = (
    "agent_work_time",
    "group_ownership_time",
    "pausable_update_time",
    "periodic_update_time",
    "reply_time",
    "requester_wait_time",
    "resolution_time",
)


def make_metric_events(
    count: int, *, start: int = 1_700_000_000, seed: int = 3, first_id: int = 8_001_000_000, per_second: float = 0.5
) -> list[dict[str, Any]]:
    """``count`` ticket metric events in the shapes of Zendesk's metric event types."""
    rng = random.Random(seed)
    events = []
    ts = start
    for n in range(count):
        kind = rng.choice(["activate", "pause", "fulfill", "apply_sla", "apply_group_sla", "breach", "update_status"])
        event: dict[str, Any] = {
            "id": first_id + n,
            "ticket_id": rng.randint(1, 50_000),
            "metric": rng.choice(METRICS),
            "instance_id": rng.randint(1, 3),
            "type": kind,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
        }
        if kind in {"apply_sla", "apply_group_sla"}:
            target = rng.choice([60, 240, 480])
            policy_id: int | str = rng.randint(1, 99)
            if kind == "apply_group_sla" or rng.random() < 0.2:
                # One published recording has sla.policy.id an integer, group_sla.policy.id a string.
                policy_id = str(policy_id)
            event["sla" if kind == "apply_sla" else "group_sla"] = {
                "target": target,
                "target_in_seconds": target * 60,
                "business_hours": rng.random() < 0.5,
                "policy": {"id": policy_id, "title": "Urgent tickets", "description": "First reply in 1h"},
            }
        elif kind == "update_status":
            event["status"] = {"calendar": rng.randint(0, 5000), "business": rng.randint(0, 3000)}
        elif kind == "breach" and rng.random() < 0.2:
            event["deleted"] = True
        events.append(event)
        ts += max(1, round(rng.expovariate(per_second)))
    return events


CHANGE_FIELDS: tuple[tuple[str, list[Any]], ...] = (
    ("status", ["new", "open", "pending", "hold", "solved", "closed"]),
    ("priority", ["low", "normal", "high", "urgent"]),
    ("type", ["question", "incident", "problem", "task"]),
    ("assignee_id", [3900001, 3900002, 3900003]),
    ("group_id", [2100001, 2100002]),
    ("custom_status_id", [5500001, 5500002]),
    ("custom_field_360041597112", ["billing", "shipping", None, 42, True]),
)


def make_events(
    count: int,
    *,
    start: int = 1_700_000_000,
    seed: int = 7,
    first_id: int = 7_001_000_000,
    bursts: dict[int, int] | None = None,
    per_second: float = 0.5,
) -> list[dict[str, Any]]:
    """Make ``count`` ticket events from ``start`` on, in realistic shapes.

    ``bursts`` maps an epoch second to how many events share it. Child ids are drawn from
    the same id sequence as events, as in Zendesk. A few items have the shape of the
    documented (metric-event) sample so that both shapes flow through the tap.
    """
    rng = random.Random(seed)
    burst_total = sum((bursts or {}).values())
    events: list[dict[str, Any]] = []
    next_id = first_id
    ts = start
    for _ in range(max(count - burst_total, 0)):
        events.append(_event(rng, next_id, ts))
        next_id += 11  # leave room for the child events' ids
        ts += max(1, round(rng.expovariate(per_second)))
    for second, size in (bursts or {}).items():
        for _ in range(size):
            events.append(_event(rng, next_id, second))
            next_id += 11
    return events


def _event(rng: random.Random, event_id: int, ts: int) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    if rng.random() < 0.02:  # the documented sample's (metric-event) shape
        return {
            "id": event_id,
            "ticket_id": rng.randint(1, 50_000),
            "timestamp": ts,
            "instance_id": rng.randint(1, 3),
            "metric": rng.choice(["periodic_update_time", "reply_time", "agent_work_time"]),
            "time": created,
            "type": rng.choice(["apply_sla", "breach", "measure"]),
        }
    via: Any = rng.choice(["Web form", "Mail", "API"])
    if rng.random() < 0.05:
        via = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
    children: list[dict[str, Any]] = []
    child_id = event_id
    for name, values in rng.sample(CHANGE_FIELDS, rng.randint(1, 3)):
        child_id += 1
        value = rng.choice(values)
        child: dict[str, Any] = {
            "id": child_id,
            "via": via if isinstance(via, str) else "API",
            "via_reference_id": None,
            name: value,
            "previous_value": rng.choice(values),
            "event_type": "Change",
        }
        children.append(child)
    if rng.random() < 0.3:
        child_id += 1
        children.append(
            {
                "id": child_id,
                "via": "Web form",
                "via_reference_id": None,
                "tags": ["vip"],
                "added_tags": ["vip"],
                "removed_tags": [],
                "event_type": "Change",
            }
        )
    if rng.random() < 0.5:
        child_id += 1
        public = rng.random() < 0.7
        body = rng.choice(["Printer on fire", "Where is my order?", "Thanks, solved!", "Café ☕ ok"])
        children.append(
            {
                "id": child_id,
                "via": "Web form",
                "via_reference_id": None,
                "comment_present": True,
                "comment_public": public,
                "event_type": "Comment",
                "_full": {
                    "id": child_id,
                    "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
                    "via_reference_id": None,
                    "type": "Comment",
                    "author_id": rng.randint(1, 9_000_000),
                    "body": body,
                    "html_body": f'<div class="zd-comment"><p>{body}</p></div>',
                    "plain_body": body,
                    "public": public,
                    "attachments": [],
                    "audit_id": event_id,
                    "created_at": created,
                    "event_type": "Comment",
                },
            }
        )
    event: dict[str, Any] = {
        "id": event_id,
        "ticket_id": rng.randint(1, 50_000),
        "timestamp": ts,
        "created_at": created,
        "updater_id": rng.choice([3900001, 3900002, -1]),
        "via": via,
        "system": {
            "client": "Mozilla/5.0",
            "location": "Lyon, ARA, France",
            "latitude": 45.76,
            "longitude": 4.83,
        },
        "event_type": "Audit",
        "child_events": children,
    }
    if rng.random() < 0.01:
        event["merged_ticket_ids"] = [rng.randint(1, 50_000)]
    return event


def pick_ai_agent_tickets(events: list[dict[str, Any]], share: float, *, seed: int = 11) -> set[int]:
    """About ``share`` of the tickets of ``events``, to be AI-agent tickets (``Simulator.ai_agent_tickets``).

    Their events are reshaped as a messaging conversation an AI agent answered: ``via``
    "Messaging", updated by the system (-1).
    """
    rng = random.Random(seed)
    tickets = sorted({e["ticket_id"] for e in events if isinstance(e.get("ticket_id"), int)})
    chosen = {t for t in tickets if rng.random() < share}
    for event in events:
        if event.get("ticket_id") in chosen and "child_events" in event:
            event["via"] = "Messaging"
            event["updater_id"] = -1
    return chosen


def make_recorded_events(count: int, *, seed: int = 5, **kwargs: Any) -> list[dict[str, Any]]:
    """``make_events`` reshaped into every variation recorded from live accounts (API notes).

    Documented-sample (metric-shaped) items lose ``timestamp`` and keep only ``time``; some
    events are a ticket's creation (``Create`` children); some events carry ``metadata: {}``,
    ``system: {}`` or null system fields, ``updater_id: -1``
    without ``created_at``; children include ``custom_ticket_fields``, ``previous_value: "0"``,
    a string ``organization_id``, and a child with neither ``id`` nor ``event_type``; sideloaded
    comments may have ``via: {}``.
    """
    rng = random.Random(seed)
    events = make_events(count, seed=seed, **kwargs)
    for event in events:
        if "metric" in event:
            del event["timestamp"]  # the documented sample has `time`, not `timestamp`
            continue
        roll = rng.random()
        if roll < 0.05:
            event["metadata"] = {}
        elif roll < 0.08:
            event["system"] = {}
        elif roll < 0.10:
            event["system"] = {"client": None, "location": None, "latitude": None, "longitude": None}
        elif roll < 0.12:
            event["updater_id"] = -1
            del event["created_at"]
        children = event["child_events"]
        if rng.random() < 0.1:  # a ticket's creation: Create children, one per field set
            children[:0] = [
                {
                    "id": event["id"] + 6,
                    "via": "Web form",
                    "via_reference_id": None,
                    "subject": "Printer on fire",
                    "event_type": "Create",
                },
                {
                    "id": event["id"] + 7,
                    "via": "Web form",
                    "via_reference_id": None,
                    "status": "new",
                    "event_type": "Create",
                },
                {
                    "id": event["id"] + 8,
                    "via": "Web form",
                    "via_reference_id": None,
                    "priority": rng.choice(["low", "normal", "high", None]),
                    "event_type": "Create",
                },
            ]
        extra = rng.random()
        if extra < 0.10:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "Web form",
                    "via_reference_id": None,
                    "custom_ticket_fields": {"360041597112": rng.choice(["set_up_app", "refund", None])},
                    "previous_value": None,
                    "event_type": "Change",
                }
            )
        elif extra < 0.15:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "API",
                    "type": rng.choice(["task", "incident"]),
                    "previous_value": "0",
                    "event_type": "Change",
                }
            )
        elif extra < 0.18:
            children.append(
                {
                    "id": event["id"] + 9,
                    "via": "API",
                    "organization_id": str(rng.randint(1, 9_999)),
                    "previous_value": None,
                    "event_type": "Change",
                }
            )
        elif extra < 0.20:
            child = {"via": "Web form", "via_reference_id": None, "priority": "high"}
            if rng.random() < 0.5:  # a change without an id of its own
                child.update(previous_value="normal", event_type="Change")
            children.append(child)
        for child in children:
            full = child.get("_full")
            if full is not None and rng.random() < 0.2:
                full["via"] = {}
    return events


def undocumented_children(rng: random.Random, event_id: int) -> list[dict[str, Any]]:
    """Child events of types the derived streams do not know, or malformed ones (API notes:
    "events may be added at any time"): unknown ``event_type``, unknown keys, nested objects,
    a documented key (``status``) with another shape, missing or non-integer ids, a comment whose
    body is no text. ``ticket_events`` must keep them as sent.
    """
    base = event_id * 100  # an id space of their own: comment ids are a primary key
    pool: list[dict[str, Any]] = [
        {
            "id": base + 1,
            "event_type": "VoiceComment",
            "via": "Voice",
            "data": {"from": "+33100000000", "to": "+33100000001", "call_duration": 42, "recording_url": None},
            "body": "Call from +33 1 00 00 00 00",
            "public": False,
        },
        {
            "id": base + 2,
            "event_type": "Notification",
            "via": "Rule",
            "via_reference_id": 360000123,
            "subject": "Your request was updated",
            "body": "Hello {{ticket.requester.name}}",
            "recipients": [3900001, 3900002],
        },
        {"id": base + 3, "event_type": "SatisfactionRating", "score": "good", "assignee_id": 3900001, "body": "Thanks"},
        {
            "id": base + 4,
            "event_type": "AiAgentHandoff",
            "status": {"state": "escalated", "reason": "asked for a human"},
            "ai_agent": {"id": "agent-7", "name": "Answer bot", "confidence": 0.42},
        },
        {"event_type": "ChatStartedEvent", "value": {"visitor_id": "v-1", "chat_id": "c-9"}},
        {
            "id": base + 6,
            "event_type": "SlaTargetChange",
            "via": "Rule",
            "previous_value": {"minutes": 60},
            "value": {"minutes": 30},
        },
        {"id": str(base + 7), "event_type": "Change", "status": "open", "previous_value": "new"},
        {
            "id": base + 8,
            "event_type": "Change",
            "custom_ticket_fields": {"360041597112": {"nested": [1, 2]}},
            "previous_value": {"a": 1},
        },
        {"id": base + 9, "event_type": "Comment", "body": {"rich": True}, "public": "yes"},
        {
            "id": base + 10,
            "event_type": "Comment",
            "body": "Bonjour",
            "public": "yes",
            "author_id": "55",
            "attachments": "none",
        },
        {"id": None, "event_type": None, "mystery": [{"a": None}]},
    ]
    return rng.sample(pool, rng.randint(1, 3))


def make_open_ended_events(count: int, *, seed: int = 23, **kwargs: Any) -> list[dict[str, Any]]:
    """``make_recorded_events`` with undocumented and malformed child events mixed in, and
    unknown top-level keys (see ``undocumented_children``).
    """
    rng = random.Random(seed)
    events = make_recorded_events(count, seed=seed, **kwargs)
    for event in events:
        if "child_events" not in event or rng.random() < 0.5:
            continue
        event["child_events"].extend(undocumented_children(rng, event["id"]))
        if rng.random() < 0.3:
            event["ai_metadata"] = {"intent": {"name": "refund", "confidence": 0.9}, "language": "fr"}
    return events
