"""Each derived stream keeps its own bookmark (issue 23, point 1).

Load ticket_events for a while, then select ticket_field_history and ticket_comments: they
shared ticket_events' bookmark, so their history before it was never written (and the comments
before it never even fetched). Now one walk serves every selected stream from the earliest
point any of them needs, and each writes from its own bookmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import make_config
from tests.runners import TapRun, run_tap_in_process, selecting
from tests.test_derived import expected_comments, expected_history
from zendesk_simulator import Simulator, event_second, make_recorded_events

ALL = ("ticket_events", "ticket_field_history", "ticket_comments")


def run(sim: Simulator, tmp_path: Path, streams: tuple[str, ...], state: dict[str, Any] | None = None) -> TapRun:
    config = make_config(sim, page_size=250)
    done = run_tap_in_process(tmp_path, config, state=state, extra_args=selecting(tmp_path, config, *streams))
    assert done.returncode == 0, done.stderr
    return done


def bookmarks(done: TapRun) -> dict[str, int | None]:
    last = done.states[-1]["bookmarks"]
    return {name: last.get(name, {}).get("replication_key_value") for name in (*ALL, "ticket_metric_events")}


def ids(rows: list[dict[str, Any]]) -> set[Any]:
    return {row["id"] for row in rows}


def test_streams_selected_later_get_their_whole_history(sim: Simulator, tmp_path: Path) -> None:
    first = make_recorded_events(1_500, seed=61)
    sim.set_events(first)
    before = run(sim, tmp_path, ("ticket_events",))
    bookmark = before.bookmark
    assert bookmark == max(event_second(e) for e in first)
    second = make_recorded_events(500, start=bookmark, first_id=max(e["id"] for e in first) + 11, seed=62)
    sim.add_events(second)
    everything = first + second
    sim.requests.clear()

    after = run(sim, tmp_path, ALL, state=before.states[-1])

    # The derived streams: every row of the whole history, as if selected from the start.
    assert ids(after.records_of("ticket_field_history")) == set(expected_history(everything))
    assert ids(after.records_of("ticket_comments")) == set(expected_comments(everything))
    # ticket_events writes nothing its bookmark covers, but the boundary second (as any resume).
    assert ids(after.records) == {e["id"] for e in everything if event_second(e) >= bookmark}
    # One walk from start_date, the comments sideloaded all along (ticket_comments starts there).
    starts = [int(r.params["start_time"]) for r in sim.export_requests()]
    assert starts[0] == 1_699_920_000
    assert len(starts) == len(set(starts))
    assert all(r.params.get("include") == "comment_events" for r in sim.export_requests())
    assert "ticket_comments: from start_date, no bookmark of its own yet" in after.stderr
    assert "ticket_field_history: from start_date, no bookmark of its own yet" in after.stderr
    assert "ticket_events: from its bookmark" in after.stderr
    end = max(event_second(e) for e in everything)
    assert bookmarks(after) == {
        "ticket_events": end,
        "ticket_field_history": end,
        "ticket_comments": end,
        "ticket_metric_events": None,
    }
    # STATE never ahead of data: ticket_events' bookmark never went back while the walk caught up.
    assert all(s["bookmarks"]["ticket_events"]["replication_key_value"] >= bookmark for s in after.states)

    sim.requests.clear()
    again = run(sim, tmp_path, ALL, state=after.states[-1])

    # Every stream from its own bookmark: only the boundary second again.
    assert len(sim.export_requests()) == 1
    assert ids(again.records) == {e["id"] for e in everything if event_second(e) == end}


def test_the_sideload_is_asked_for_the_stretch_ticket_comments_needs(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(2_000, seed=63)
    sim.set_events(events)
    middle = event_second(sorted(events, key=event_second)[1_000])
    state = {
        "bookmarks": {
            "ticket_events": {"replication_key": "end_time", "replication_key_value": middle},
            "ticket_comments": {"replication_key": "end_time", "replication_key_value": middle},
        }
    }

    done = run(sim, tmp_path, ALL, state=state)

    assert ids(done.records_of("ticket_field_history")) == set(expected_history(events))
    assert ids(done.records_of("ticket_comments")) == set(
        expected_comments([e for e in events if event_second(e) >= middle])
    )
    requests = sim.export_requests()
    assert all("include" not in r.params for r in requests if int(r.params["start_time"]) < middle)
    assert all(r.params.get("include") == "comment_events" for r in requests if int(r.params["start_time"]) >= middle)
    assert int(requests[0].params["start_time"]) < middle
    assert "ticket_comments: from its bookmark" in done.stderr


def test_the_bookmarks_of_streams_not_selected_stay_as_they_are(sim: Simulator, tmp_path: Path) -> None:
    events = make_recorded_events(600, seed=64)
    sim.set_events(events)
    state = {
        "bookmarks": {
            "ticket_comments": {"replication_key": "end_time", "replication_key_value": 1_700_000_100},
            "ticket_events": {"replication_key": "end_time", "replication_key_value": 1_700_000_200},
        }
    }

    only_events = run(sim, tmp_path, ("ticket_events",), state=state)
    only_history = run(sim, tmp_path, ("ticket_field_history",), state=state)

    end = max(event_second(e) for e in events)
    assert bookmarks(only_events)["ticket_comments"] == 1_700_000_100
    assert bookmarks(only_events)["ticket_events"] == end
    assert bookmarks(only_history)["ticket_events"] == 1_700_000_200  # not selected: it stays
    assert bookmarks(only_history)["ticket_comments"] == 1_700_000_100
    assert bookmarks(only_history)["ticket_field_history"] == end
    assert only_history.records == []
