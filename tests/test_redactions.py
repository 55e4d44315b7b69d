"""The redaction rules (redactions.py), table by table: pure functions, no HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tap_zendesk_ticket_events import redactions
from tap_zendesk_ticket_events.redactions import Redaction


def audit(*children: Any, **event: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 500,
        "ticket_id": 42,
        "timestamp": 1_700_100_000,
        "created_at": "2023-11-16T02:00:00Z",
        "updater_id": 3900001,
        "via": "Web service",
        "event_type": "Audit",
        "child_events": list(children),
    }
    return {**base, **event}


COMMENT_CHILD = {"id": 501, "event_type": "CommentRedactionEvent", "comment_id": "3977000229", "via": "Web service"}
ATTACHMENT_CHILD = {"id": 502, "event_type": "AttachmentRedactionEvent", "attachment_id": "3977000373"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3977000229, 3977000229),
        ("3977000229", 3977000229),
        ("0042", 42),
        ("", None),
        ("12a", None),
        ("-5", None),
        ("\u0663", None),  # an Arabic-Indic digit: str.isdigit says yes, ids say no
        (True, None),
        (12.0, None),
        (None, None),
    ],
)
def test_parse_id_takes_integers_and_numeric_strings(value: Any, expected: int | None) -> None:
    assert redactions.parse_id(value) == expected


def test_find_reads_both_kinds_with_string_ids() -> None:
    page = [audit(COMMENT_CHILD), audit(ATTACHMENT_CHILD, id=600, ticket_id=43, updater_id=-1, via={"channel": "api"})]
    assert redactions.find(page) == [
        Redaction(501, 500, 42, "comment", 3977000229, None, 1_700_100_000, "2023-11-16T02:00:00Z", 3900001, "Web service"),
        Redaction(502, 600, 43, "attachment", None, 3977000373, 1_700_100_000, "2023-11-16T02:00:00Z", -1, '{"channel":"api"}'),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "page",
    [
        [],
        [audit()],  # an SLA audit: no children
        [audit({"id": 1, "event_type": "Comment", "body": "comment_id in the text"})],
        [audit({**COMMENT_CHILD, "comment_id": None})],  # names nothing
        [audit({**COMMENT_CHILD, "comment_id": "not-an-id"})],
        [audit({**ATTACHMENT_CHILD, "attachment_id": None, "comment_id": "5"})],  # an attachment kind needs one
        [audit({k: v for k, v in COMMENT_CHILD.items() if k != "id"})],  # no id: no ticket_redactions key
        [audit(COMMENT_CHILD, ticket_id=None)],
        [audit(COMMENT_CHILD, id="500")],
        [{"id": 1, "ticket_id": 42, "child_events": "not a list"}],
        [audit("not an object", None, ["x"])],
    ],
)
def test_find_leaves_out_what_it_cannot_use(page: list[dict[str, Any]]) -> None:
    assert redactions.find(page) == []


def test_find_keeps_the_audits_second_from_created_at_when_there_is_no_timestamp() -> None:
    page = [audit(COMMENT_CHILD, timestamp=None, created_at="2023-11-16T02:00:01Z")]
    (found,) = redactions.find(page)
    assert found.second == 1_700_100_001


COMMENTS = [
    {"id": 11, "audit_id": 110, "created_at": "2023-11-15T00:00:00Z", "attachments": []},
    {"id": 12, "audit_id": 120, "created_at": "2023-11-15T00:00:05Z", "attachments": [{"id": 7}, {"id": 8}]},
    {"id": 13, "audit_id": 130, "created_at": "2023-11-15T00:00:09Z", "attachments": None},
]


def redaction(kind: str, target: int) -> Redaction:
    comment_id, attachment_id = (target, None) if kind == "comment" else (None, target)
    return Redaction(1, 2, 42, kind, comment_id, attachment_id, 1_700_100_000, None, None, None)


@pytest.mark.parametrize(
    ("kind", "target", "expected"),
    [
        ("comment", 12, 12),
        ("comment", 13, 13),
        ("comment", 99, None),
        ("attachment", 8, 12),  # the comment that lists it
        ("attachment", 7, 12),
        ("attachment", 11, None),  # a comment's id is no attachment's
        ("attachment", 99, None),
    ],
)
def test_locate_finds_the_comment_of_a_comment_or_of_an_attachment(
    kind: str, target: int, expected: int | None
) -> None:
    found = redactions.locate(redaction(kind, target), COMMENTS)
    assert (found or {}).get("id") == expected


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ({"audit_id": 120, "created_at": "2023-11-15T00:00:05Z"}, (120, 1_700_006_405)),
        ({"audit_id": "120", "created_at": "2023-11-15T00:00:05+00:00"}, (120, 1_700_006_405)),
        ({"audit_id": None, "created_at": "garbage"}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_audit_of_a_comment(comment: dict[str, Any], expected: tuple[int | None, int | None]) -> None:
    assert redactions.audit_of(comment) == expected


def test_a_listed_comment_makes_the_row_an_export_page_makes() -> None:
    """The same columns, by the same rule, as derived.comments from the sideloaded child."""
    listed = {
        "id": 12,
        "type": "Comment",
        "audit_id": 120,
        "author_id": 3900001,
        "body": "My card is ▇▇▇▇",
        "html_body": "<p>My card is ▇▇▇▇</p>",
        "plain_body": "My card is ▇▇▇▇",
        "public": True,
        "attachments": [{"id": 8, "file_name": "redacted.txt", "size": 1}],
        "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2023-11-15T00:00:05Z",
        "metadata": {"system": {}, "custom": {}},
    }
    assert redactions.comment_row(42, listed) == {
        "id": 12,
        "ticket_id": 42,
        "event_id": 120,
        "author_id": 3900001,
        "public": True,
        "body": "My card is ▇▇▇▇",
        "html_body": "<p>My card is ▇▇▇▇</p>",
        "plain_body": "My card is ▇▇▇▇",
        "attachments": [{"id": 8, "file_name": "redacted.txt", "size": 1}],
        "via": '{"channel":"web","source":{"from":{},"to":{},"rel":null}}',
        "created_at": "2023-11-15T00:00:05Z",
    }
    assert redactions.comment_row(42, {**listed, "audit_id": None}) is None


RUN_FROM = 1_700_000_000
SERVED = 1_800_000_000


@pytest.mark.parametrize(
    ("audit_second", "redaction_second", "served_since", "expected", "why"),
    [
        (RUN_FROM + 5, SERVED - 100, SERVED, True, "redacted before this run read the audit"),
        (RUN_FROM, SERVED - 100, SERVED, True, "the run's first second was read by this run too"),
        (RUN_FROM - 1, SERVED - 100, SERVED, False, "an earlier run wrote the audit"),
        (RUN_FROM + 5, SERVED, SERVED, False, "redacted in the second the first page was served"),
        (RUN_FROM + 5, SERVED + 100, SERVED, False, "redacted while the run went on"),
        (RUN_FROM + 5, SERVED - 100, None, False, "no Date header: no proof"),
        (RUN_FROM + 5, None, SERVED, False, "a redaction without a second: no proof"),
    ],
)
def test_already_current(
    audit_second: int, redaction_second: int | None, served_since: int | None, expected: bool, why: str
) -> None:
    assert (
        redactions.already_current(audit_second, redaction_second, run_from=RUN_FROM, served_since=served_since)
        is expected
    ), why


def test_rereads_ask_each_second_once() -> None:
    assert redactions.rereads({110: 5, 120: 9, 121: 9, 130: 3}) == {3: {130}, 5: {110}, 9: {120, 121}}
    assert list(redactions.rereads({1: 9, 2: 3})) == [3, 9]  # oldest first


def test_redaction_rows() -> None:
    comment_kind = Redaction(
        501, 500, 42, "comment", 12, None, 1_700_100_000, "2023-11-16T02:00:00Z", 3900001, "Web service"
    )
    attachment_kind = Redaction(502, 600, 42, "attachment", None, 8, 1_700_100_000, "2023-11-16T02:00:00Z", -1, "API")
    assert redactions.redaction_row(comment_kind, COMMENTS[1], rewritten=True) == {
        "id": 501,
        "event_id": 500,
        "ticket_id": 42,
        "redaction_type": "comment",
        "comment_id": 12,
        "attachment_id": None,
        "comment_event_id": 120,
        "redacted_at": "2023-11-16T02:00:00Z",
        "updater_id": 3900001,
        "via": "Web service",
        "rewritten": True,
    }
    # An attachment's comment comes from the comments list; without it, only the attachment is known.
    row = redactions.redaction_row(attachment_kind, COMMENTS[1], rewritten=True)
    assert (row["comment_id"], row["attachment_id"], row["comment_event_id"]) == (12, 8, 120)
    row = redactions.redaction_row(attachment_kind, None, rewritten=False)
    assert (row["comment_id"], row["attachment_id"], row["comment_event_id"], row["rewritten"]) == (
        None,
        8,
        None,
        False,
    )
    row = redactions.redaction_row(comment_kind, None, rewritten=False)
    assert (row["comment_id"], row["comment_event_id"]) == (12, None)
