"""The export's walk: one owner of the next request, the boundary, the probe and the end (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.page_size import AdaptivePageSize
from tap_zendesk_ticket_events.pages import ExportPage, probe_size
from tap_zendesk_ticket_events.walk import ExportWalk

T = 1_700_000_000


def events(*seconds: int, first_id: int = 1) -> list[dict[str, Any]]:
    return [{"id": first_id + n, "timestamp": s} for n, s in enumerate(seconds)]


def answer(walk: ExportWalk, items: list[dict[str, Any]], end_time: int | None, end: bool | None = False) -> list[Any]:
    walk.sending()
    walk.answered(ExportPage(items, end_time, end))
    return [r["id"] for r in walk.take_page().records]


def test_pages_follow_end_time_and_dedupe_the_boundary_second() -> None:
    walk = ExportWalk(T, AdaptivePageSize(3), end_before=None, sideload=False)
    assert walk.params() == {"start_time": T, "per_page": 3}
    assert answer(walk, events(T, T + 1, T + 2), T + 2) == [1, 2, 3]
    assert walk.token() == (T + 2, None)
    assert walk.params()["start_time"] == T + 2
    # The boundary event (id 3) comes again: not emitted twice.
    assert answer(walk, [*events(T + 2, first_id=3), *events(T + 5, T + 6, first_id=4)], T + 6, end=True) == [4, 5]
    assert walk.token() is None


def test_a_full_page_ending_where_it_started_is_probed_then_settled() -> None:
    walk = ExportWalk(T, AdaptivePageSize(2), end_before=None, sideload=True)
    answer(walk, events(T, T), T)
    assert walk.token() == (T, probe_size(2))
    assert walk.params() == {"start_time": T, "per_page": probe_size(2), "include": "comment_events"}
    assert walk.sending() == probe_size(2)
    walk.answered(ExportPage([*events(T, T), *events(T + 3, first_id=9)], T + 3, end_of_stream=False))
    assert [r["id"] for r in walk.take_page().records] == [9]
    assert walk.token() == (T + 3, None)


def test_a_second_cut_twice_fails_when_the_next_token_is_asked() -> None:
    walk = ExportWalk(T, AdaptivePageSize(2), end_before=None, sideload=False)
    answer(walk, events(T, T), T)
    walk.sending()
    # The probe (one more than the page) is cut at the same second again.
    walk.answered(ExportPage(events(*[T] * probe_size(2), first_id=5), T, end_of_stream=False))
    plan = walk.take_page()
    assert plan.records  # emitted first...
    with pytest.raises(TapError, match="not delivering the rest of second"):
        walk.token()  # ...then the walk refuses to go on


def test_a_timeout_halves_the_page_for_the_retry_and_drops_a_probe() -> None:
    walk = ExportWalk(T, AdaptivePageSize(100), end_before=None, sideload=False)
    assert walk.sending() == 100
    assert walk.timed_out()
    assert walk.sending() == 50
    assert walk.sent is not None
    assert walk.sent.per_page == 50  # what the answered try carried is what the plan uses


def test_the_connection_test_walk_sends_one_event_pages_without_sideload() -> None:
    walk = ExportWalk(T, AdaptivePageSize(1000), end_before=None, sideload=False, fixed_per_page=1)
    assert walk.params() == {"start_time": T, "per_page": 1}
    assert not walk.timed_out()
    assert walk.sending() == 1


def test_is_page_end_names_the_last_record_of_the_last_page_only() -> None:
    walk = ExportWalk(T, AdaptivePageSize(10), end_before=None, sideload=False)
    walk.sending()
    walk.answered(ExportPage(events(T, T + 1), T + 1, end_of_stream=True))
    first, last = walk.take_page().records
    assert walk.is_page_end(last)
    assert not walk.is_page_end(first)
    assert not walk.is_page_end(dict(last))  # the record itself, not an equal one
