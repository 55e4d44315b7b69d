"""The simulator speaks redactions as the live account recorded in October 2026 showed them."""

from __future__ import annotations

import base64
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from tests.redaction_data import CARD, PASSPORT, PHONE, plant
from zendesk_simulator import API_TOKEN, BLOCK, EMAIL, Simulator, make_events

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{EMAIL}/token:{API_TOKEN}".encode()).decode()}


def export(sim: Simulator, start_time: int = 1_699_999_000) -> list[dict[str, Any]]:
    """Every ticket event with comments sideloaded, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {
            "start_time": start_time,
            "per_page": 1000,
            "include": "comment_events",
            "support_type_scope": "all",
        }
        body = requests.get(f"{sim.url}/api/v2/incremental/ticket_events.json", params=params, headers=AUTH).json()
        items += body["ticket_events"]
        if body["end_of_stream"]:
            return items
        start_time = body["end_time"]


def comments(sim: Simulator, ticket_id: int, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}/api/v2/tickets/{ticket_id}/comments", params=params, headers=AUTH)


def comment_child(items: list[dict[str, Any]], comment_id: int) -> dict[str, Any]:
    return next(c for e in items for c in e.get("child_events", ()) if c.get("id") == comment_id and "body" in c)


def test_an_export_after_a_redaction_sends_the_current_text_and_the_redaction_audit(sim: Simulator) -> None:
    events = make_events(200, seed=81)
    planted = plant(events)
    sim.set_events(events)
    comment_id = planted.comment_ids[0]
    before = comment_child(export(sim), comment_id)
    assert CARD in before["body"]

    at = 1_700_500_000
    audit_id = sim.redact_comment(comment_id, CARD, at=at)
    after = export(sim)
    child = comment_child(after, comment_id)
    erased = "\u2587" * 4 + " " + "\u2587" * 4 + " " + "\u2587" * 4 + " " + "\u2587" * 4
    assert child["body"] == f"My card is {erased}, call me on {PHONE}."
    assert CARD not in child["html_body"]
    assert CARD not in child["plain_body"]
    (audit,) = [e for e in after if e["id"] == audit_id]
    assert audit["timestamp"] == at
    assert audit["via"] == "Web service"
    assert audit["ticket_id"] == next(t for t, ids in planted.tickets.items() if comment_id in ids)
    (redaction,) = audit["child_events"]
    assert redaction["event_type"] == "CommentRedactionEvent"
    assert redaction["comment_id"] == str(comment_id)  # a string, as recorded


def test_a_redaction_takes_effect_at_its_time_on_the_simulators_clock(sim: Simulator) -> None:
    events = make_events(200, seed=81)
    planted = plant(events)
    sim.set_events(events)
    sim.now = 1_700_400_000
    comment_id = planted.comment_ids[0]
    audit_id = sim.redact_comment(comment_id, at=1_700_450_000)
    items = export(sim)
    assert CARD in comment_child(items, comment_id)["body"]
    assert audit_id not in {e["id"] for e in items}
    sim.now = 1_700_460_000
    items = export(sim)
    assert set(comment_child(items, comment_id)["body"]) == {BLOCK}  # no text given: all of it
    assert audit_id in {e["id"] for e in items}


def test_an_attachment_redaction_names_only_the_attachment(sim: Simulator) -> None:
    events = make_events(200, seed=81)
    planted = plant(events)
    sim.set_events(events)
    attachment_id, comment_id = next(iter(planted.attachments.items()))
    audit_id = sim.redact_attachment(attachment_id, at=1_700_500_000)
    items = export(sim)
    (listed,) = comment_child(items, comment_id)["attachments"]
    assert listed["id"] == attachment_id
    assert (listed["file_name"], listed["size"]) == ("redacted.txt", 1)
    assert PASSPORT not in str(comment_child(items, comment_id))
    (child,) = next(e for e in items if e["id"] == audit_id)["child_events"]
    assert child == {
        "id": audit_id + 1,
        "via": "Web service",
        "via_reference_id": None,
        "event_type": "AttachmentRedactionEvent",
        "attachment_id": str(attachment_id),
    }


def test_the_comments_endpoint_pages_by_cursor_with_the_current_text(sim: Simulator) -> None:
    events = make_events(300, seed=82)
    planted = plant(events, tickets=1, per_ticket=5)
    sim.set_events(events)
    ((ticket, ids),) = planted.tickets.items()
    sim.redact_comment(ids[2], PHONE, at=1_700_500_000)
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page[size]": 2}
    pages = 0
    while True:
        answer = comments(sim, ticket, **params)
        assert answer.status_code == 200
        assert answer.headers["ratelimit-limit"] == answer.headers["x-rate-limit"] == "400"
        assert int(answer.headers["ratelimit-remaining"]) == 400 - pages - 1
        body = answer.json()
        pages += 1
        seen += body["comments"]
        if not body["meta"]["has_more"]:
            assert body["links"]["next"] is None
            break
        assert "page%5Bafter%5D=" in body["links"]["next"]
        params = {"page[size]": 2, "page[after]": body["meta"]["after_cursor"]}
    assert pages == 3
    assert [c["id"] for c in seen] == ids
    assert [c["audit_id"] for c in seen] == [planted.events_of[i] for i in ids]
    assert PHONE not in seen[2]["body"]
    assert CARD in seen[2]["body"]
    assert all(
        {"author_id", "html_body", "plain_body", "public", "attachments", "created_at", "via", "metadata"} <= set(c)
        for c in seen
    )
    assert comments(sim, ticket, **{"page[size]": 101}).status_code == 400


def test_a_deleted_ticket_answers_404_and_the_account_limit_answers_429(sim: Simulator) -> None:
    events = make_events(200, seed=81)
    planted = plant(events)
    sim.set_events(events)
    first, second = list(planted.tickets)[:2]
    sim.delete_ticket(first)
    assert comments(sim, first).status_code == 404
    assert comments(sim, 12_345_678).status_code == 404  # never existed

    sim.account_rate_limit_per_minute = 3  # two requests spent above
    assert comments(sim, second).status_code == 200
    refused = comments(sim, second)
    assert refused.status_code == 429
    assert refused.json()["error"] == "APIRateLimitExceeded"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    # The export's budget is another one.
    assert export(sim)


def test_the_date_header_follows_the_simulators_clock(sim: Simulator) -> None:
    sim.set_events(make_events(10))
    sim.now = 1_700_400_000
    answer = requests.get(f"{sim.url}/api/v2/incremental/ticket_events.json", params={"start_time": 1}, headers=AUTH)
    assert parsedate_to_datetime(answer.headers["Date"]).timestamp() == 1_700_400_000
