"""The page rules on their own: dedupe, stamps, bursts, stalls, end_date."""

from __future__ import annotations

from typing import Any

import pytest

from tap_zendesk_ticket_events.errors import TapError
from tap_zendesk_ticket_events.pages import Boundary, ExportPage, PagePlan, plan_page


def items(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"id": i, "timestamp": ts} for i, ts in pairs]


def plan(
    page: ExportPage, start: int, per_page: int = 3, end_before: int | None = None, boundary: Boundary | None = None
) -> PagePlan:
    return plan_page(
        page, start_time=start, per_page=per_page, end_before=end_before, boundary=boundary or Boundary(start)
    )


def test_stamps_are_own_timestamps_and_last_is_end_time() -> None:
    result = plan(ExportPage(items((2, 10), (1, 10), (3, 11)), end_time=12, end_of_stream=False), 10)
    assert [r["id"] for r in result.records] == [1, 2, 3]  # ordered by (timestamp, id)
    assert [r["end_time"] for r in result.records] == [10, 10, 12]
    assert result.next_start == 12


def test_boundary_second_is_deduplicated_on_the_next_page() -> None:
    first = plan(ExportPage(items((1, 10), (2, 11), (3, 11)), end_time=11, end_of_stream=False), 10)
    assert first.boundary == Boundary(11, {2, 3})
    second = plan(ExportPage(items((2, 11), (3, 11), (4, 12)), 12, False), 11, boundary=first.boundary)
    assert [r["id"] for r in second.records] == [4]
    assert second.duplicates == 2


def test_a_page_of_only_duplicates_is_not_the_end() -> None:
    boundary = Boundary(11, {2, 3})
    result = plan(
        ExportPage(items((2, 11), (3, 11)), end_time=11, end_of_stream=False), 11, per_page=1, boundary=boundary
    )
    assert result.records == []
    assert result.next_start == 12  # a whole second larger than per_page came: step past it


def test_oversized_page_of_one_second_steps_past_it() -> None:
    page = ExportPage(items(*((i, 50) for i in range(5))), end_time=50, end_of_stream=False)
    result = plan(page, 50, per_page=3)
    assert len(result.records) == 5
    assert result.next_start == 51
    assert result.boundary.ids == set()


@pytest.mark.parametrize("size", [0, 2, 3])
def test_page_repeating_its_start_without_a_burst_is_a_stall(size: int) -> None:
    page = ExportPage(items(*((i, 50) for i in range(size))), end_time=50, end_of_stream=False)
    result = plan(page, 50, per_page=3)
    assert result.next_start is None
    assert result.stall_error is not None
    assert "50 (1970-01-01T00:00:50Z)" in result.stall_error
    assert len(result.records) == size  # what came is still emitted


def test_end_of_stream_ends_even_with_next_page_present() -> None:
    result = plan(ExportPage(items((1, 10)), end_time=10, end_of_stream=True), 10)
    assert result.next_start is None
    assert result.stall_error is None


def test_end_before_filters_and_bookmarks_the_cut() -> None:
    page = ExportPage(items((1, 10), (2, 19), (3, 20), (4, 25)), end_time=25, end_of_stream=False)
    result = plan(page, 10, end_before=20)
    assert [r["id"] for r in result.records] == [1, 2]
    assert result.records[-1]["end_time"] == 20
    assert result.next_start is None


def test_items_outside_the_window_are_clamped_so_stamps_never_decrease() -> None:
    page = ExportPage(
        [{"id": 1, "timestamp": 5}, {"id": 2}, {"id": 3, "timestamp": 99}], end_time=30, end_of_stream=False
    )
    result = plan(page, 10)
    stamps = [r["end_time"] for r in result.records]
    assert stamps == sorted(stamps)
    assert all(10 <= s <= 30 for s in stamps)
    assert result.boundary.ids == {3}  # ts 99 >= next start 30: may come again


def test_end_time_before_start_is_refused() -> None:
    with pytest.raises(TapError, match="earlier than its own start"):
        plan(ExportPage(items((1, 10)), end_time=5, end_of_stream=False), 10)


def test_missing_end_time_falls_back_to_the_newest_item() -> None:
    result = plan(ExportPage(items((1, 10), (2, 14)), end_time=None, end_of_stream=False), 10)
    assert result.next_start == 14


@pytest.mark.parametrize(
    "body", [[], {"ticket_events": "x"}, {"nothing": []}, {"ticket_events": [], "end_time": "soon"}]
)
def test_decode_refuses_malformed_envelopes(body: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        ExportPage.decode(body, "ticket_events")
