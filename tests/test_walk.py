"""The export's walk: one owner of the next request, the boundary, the probe and the end (no HTTP)."""

from __future__ import annotations

from typing import Any

from tap_zendesk_ticket_events.page_size import AdaptivePageSize
from tap_zendesk_ticket_events.pages import ExportPage, probe_size
from tap_zendesk_ticket_events.walk import ExportWalk, PageRequest

T = 1_700_000_000


def events(*seconds: int, first_id: int = 1) -> list[dict[str, Any]]:
    return [{"id": first_id + n, "timestamp": s} for n, s in enumerate(seconds)]


def request(walk: ExportWalk) -> PageRequest:
    sent = walk.next_request()
    assert sent is not None
    return sent


def answer(walk: ExportWalk, items: list[dict[str, Any]], end_time: int | None, end: bool | None = False) -> list[Any]:
    return [r["id"] for r in walk.advance(request(walk), ExportPage(items, end_time, end)).plan.records]


def test_pages_follow_end_time_and_dedupe_the_boundary_second() -> None:
    walk = ExportWalk(T, AdaptivePageSize(3), end_before=None, sideload=False)
    assert request(walk).params() == {"start_time": T, "per_page": 3}
    assert answer(walk, events(T, T + 1, T + 2), T + 2) == [1, 2, 3]
    assert (request(walk).start_time, request(walk).probe) == (T + 2, False)
    assert request(walk).params()["start_time"] == T + 2
    # The boundary event (id 3) comes again: not emitted twice.
    assert answer(walk, [*events(T + 2, first_id=3), *events(T + 5, T + 6, first_id=4)], T + 6, end=True) == [4, 5]
    assert walk.next_request() is None


def test_a_full_page_ending_where_it_started_is_probed_then_settled() -> None:
    walk = ExportWalk(T, AdaptivePageSize(2), end_before=None, sideload=True)
    answer(walk, events(T, T), T)
    probe = request(walk)
    assert (probe.start_time, probe.per_page, probe.probe) == (T, probe_size(2), True)
    assert probe.params() == {"start_time": T, "per_page": probe_size(2), "include": "comment_events"}
    page = ExportPage([*events(T, T), *events(T + 3, first_id=9)], T + 3, end_of_stream=False)
    assert [r["id"] for r in walk.advance(probe, page).plan.records] == [9]
    assert (request(walk).start_time, request(walk).probe) == (T + 3, False)


def test_a_second_cut_twice_ends_the_walk_with_the_stall_after_its_records() -> None:
    walk = ExportWalk(T, AdaptivePageSize(2), end_before=None, sideload=False)
    answer(walk, events(T, T), T)
    # The probe (one more than the page) is cut at the same second again.
    plan = walk.advance(
        request(walk), ExportPage(events(*[T] * probe_size(2), first_id=5), T, end_of_stream=False)
    ).plan
    assert plan.records  # emitted first...
    assert plan.stall_error is not None
    assert "not delivering the rest of second" in plan.stall_error  # ...then the export refuses to go on
    assert walk.next_request() is None


def test_a_timeout_halves_the_page_for_the_retry_and_drops_a_probe() -> None:
    walk = ExportWalk(T, AdaptivePageSize(100), end_before=None, sideload=False)
    assert request(walk).per_page == 100
    retry = walk.shrink_page()
    assert retry is not None
    assert retry.per_page == request(walk).per_page == 50  # what the answered try carried is what the plan uses
    walk = ExportWalk(T, AdaptivePageSize(100), end_before=None, sideload=False)
    answer(walk, events(*[T] * 100), T)
    assert request(walk).probe
    retry = walk.shrink_page()
    assert retry is not None
    assert (retry.per_page, retry.probe) == (50, False)


def test_the_page_size_has_one_writer_the_walk() -> None:
    size = AdaptivePageSize(100, grow_after=2)
    walk = ExportWalk(T, size, end_before=None, sideload=False)
    assert walk.shrink_page() is not None
    assert walk.advance(request(walk), ExportPage(events(T), T + 1, end_of_stream=False)).raised_to is None
    assert walk.advance(request(walk), ExportPage(events(T + 1), T + 2, end_of_stream=False)).raised_to == 100
    assert request(walk).per_page == 100


def test_planning_leaves_the_decoded_items_as_they_came() -> None:
    walk = ExportWalk(T, AdaptivePageSize(10), end_before=None, sideload=False)
    items = events(T, T + 1)
    records = walk.advance(request(walk), ExportPage(items, T + 1, end_of_stream=True)).plan.records
    assert [r["end_time"] for r in records] == [T, T + 1]
    assert all("end_time" not in item for item in items)
