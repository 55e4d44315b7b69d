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


def test_full_page_ending_where_it_started_is_probed_once_at_another_size() -> None:
    page = ExportPage(items(*((i, 50) for i in range(3))), end_time=50, end_of_stream=False)
    first = plan(page, 50, per_page=3)
    assert len(first.records) == 3  # what came is emitted before the probe
    assert (first.next_start, first.next_per_page) == (50, 4)
    assert first.stall_error is None
    # The probe is cut at its own size too: an API that never grows a page. Fail, naming the second.
    probe = ExportPage(items(*((i, 50) for i in range(4))), end_time=50, end_of_stream=False)
    second = plan(probe, 50, per_page=4, boundary=first.boundary)
    assert second.next_start is None
    assert second.stall_error is not None
    assert "50 (1970-01-01T00:00:50Z)" in second.stall_error
    assert [r["id"] for r in second.records] == [3]  # the new one; 0-2 were emitted already


@pytest.mark.parametrize(("per_page", "probe_size"), [(1, 2), (7, 8), (999, 1000), (1000, 999)])
def test_probe_size_moves_away_from_the_full_size(per_page: int, probe_size: int) -> None:
    page = ExportPage(items(*((i, 50) for i in range(per_page))), end_time=50, end_of_stream=False)
    assert plan(page, 50, per_page=per_page).next_per_page == probe_size


def test_a_probe_that_moves_past_the_second_proves_it_whole() -> None:
    first = plan(ExportPage(items((1, 50), (2, 50)), end_time=50, end_of_stream=False), 50, per_page=2)
    probe = ExportPage(items((1, 50), (2, 50), (3, 51)), end_time=51, end_of_stream=False)
    second = plan(probe, 50, per_page=3, boundary=first.boundary)
    assert [r["id"] for r in second.records] == [3]
    assert (second.next_start, second.next_per_page, second.stall_error) == (51, None, None)


def test_a_probe_that_grows_proves_the_second_whole() -> None:
    first = plan(ExportPage(items(*((i, 50) for i in range(1000))), end_time=50, end_of_stream=False), 50, 1000)
    assert first.next_per_page == 999
    probe = ExportPage(items(*((i, 50) for i in range(1000))), end_time=50, end_of_stream=False)
    second = plan(probe, 50, per_page=999, boundary=first.boundary)
    assert second.records == []
    assert (second.next_start, second.stall_error) == (51, None)


@pytest.mark.parametrize("end_of_stream", [None, True])
def test_nothing_past_start_without_end_of_stream_is_the_end(end_of_stream: bool | None) -> None:
    # Recorded bodies (and the metric export's published example) have no end_of_stream key.
    result = plan(ExportPage(items((1, 50), (2, 50)), end_time=50, end_of_stream=end_of_stream), 50, per_page=3)
    assert (result.next_start, result.stall_error) == (None, None)
    assert result.records[-1]["end_time"] == 50  # the bookmark stays where the data ends


def test_without_end_of_stream_a_page_past_start_goes_on() -> None:
    result = plan(ExportPage(items((1, 50), (2, 52)), end_time=52, end_of_stream=None), 50, per_page=3)
    assert result.next_start == 52


@pytest.mark.parametrize("end_of_stream", [None, True])
def test_an_empty_page_with_null_end_time_is_a_normal_end(end_of_stream: bool | None) -> None:
    result = plan(ExportPage([], end_time=None, end_of_stream=end_of_stream), 50)
    assert (result.next_start, result.stall_error, result.records) == (None, None, [])


@pytest.mark.parametrize(
    ("end_time", "next_page_start", "end_before", "next_start"),
    [
        (80, None, None, 80),  # end_time moves: the next page starts there
        (None, 90, None, 90),  # no end_time, next_page's start_time moves: follow it
        (50, 90, None, 90),
        (None, 90, 70, None),  # next_page points past end_date: the window is done
    ],
)
def test_an_empty_page_that_says_the_export_goes_on_is_followed(
    end_time: int | None, next_page_start: int | None, end_before: int | None, next_start: int | None
) -> None:
    page = ExportPage([], end_time=end_time, end_of_stream=False, next_page_start=next_page_start)
    result = plan(page, 50, end_before=end_before)
    assert (result.next_start, result.stall_error) == (next_start, None)


@pytest.mark.parametrize(("end_time", "next_page_start"), [(None, None), (50, None), (None, 50), (50, 50), (None, 40)])
def test_an_empty_page_that_goes_on_but_points_nowhere_later_is_an_error(
    end_time: int | None, next_page_start: int | None
) -> None:
    page = ExportPage([], end_time=end_time, end_of_stream=False, next_page_start=next_page_start)
    result = plan(page, 50)
    assert result.next_start is None
    assert result.stall_error is not None
    assert "empty page with end_of_stream false for start_time=50" in result.stall_error


def test_next_page_is_read_for_its_start_time_alone() -> None:
    body = {"ticket_events": [], "end_of_stream": False, "end_time": None}
    next_page = "https://elsewhere.example/api/v2/incremental/ticket_events.json?sort_by=x&start_time=1700000123"
    assert ExportPage.decode({**body, "next_page": next_page}, "ticket_events").next_page_start == 1700000123
    assert ExportPage.decode({**body, "next_page": None}, "ticket_events").next_page_start is None
    assert (
        ExportPage.decode({**body, "next_page": "https://x/?start_time=soon"}, "ticket_events").next_page_start is None
    )


def test_end_of_stream_false_never_stops_early() -> None:
    # Not full, nothing past start, but the API says there is more: the second is whole (the
    # page was not full), so go on one second later.
    result = plan(ExportPage(items((1, 50)), end_time=50, end_of_stream=False), 50, per_page=3)
    assert (result.next_start, result.stall_error) == (51, None)


def test_an_items_second_is_its_timestamp_else_time_else_created_at() -> None:
    page = ExportPage(
        [
            {"id": 1, "time": "1970-01-01T00:00:52Z"},
            {"id": 2, "created_at": "1970-01-01T00:00:51Z"},
            {"id": 3, "timestamp": 50, "time": "1970-01-01T00:00:59Z"},
        ],
        end_time=52,
        end_of_stream=False,
    )
    result = plan(page, 50)
    assert [(r["id"], r["end_time"]) for r in result.records] == [(3, 50), (2, 51), (1, 52)]
    assert result.boundary == Boundary(52, {1})
    again = plan(ExportPage([{"id": 1, "time": "1970-01-01T00:00:52Z"}], 52, True), 52, boundary=result.boundary)
    assert again.records == []  # a `time`-only item of the boundary second is not emitted twice


def test_an_item_without_id_stops_the_export_naming_the_page() -> None:
    page = ExportPage([{"id": 1, "timestamp": 50}, {"timestamp": 50}], end_time=50, end_of_stream=False)
    with pytest.raises(TapError, match=r"without an 'id' \(item 2 of 2\) on the page for start_time=50 "):
        plan(page, 50)


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
    assert result.boundary.ids == {2, 3}  # 99 >= next start 30, and 2 has no second: may come again


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
