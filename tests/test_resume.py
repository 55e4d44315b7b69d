"""Interrupting a backfill anywhere and resuming from the last STATE loses nothing."""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_config
from tests.runners import run_tap
from zendesk_simulator import Simulator, make_events


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupted_backfill_resumes_without_loss(sim: Simulator, tmp_path: Path, sig: int) -> None:
    events = make_events(20_000, bursts={1_700_004_000: 1_200})
    sim.set_events(events)
    sim.latency = 0.01
    config = make_config(sim, page_size=500)
    rng = random.Random(sig)

    seen: set[int] = set()
    state: dict[str, Any] | None = None
    for _ in range(4):
        remaining = len({e["id"] for e in events} - seen)
        run = run_tap(tmp_path, config, state, signal=sig, after=rng.randint(1, max(1, remaining - 1)))
        if sig == signal.SIGTERM:
            assert run.returncode == 128 + sig, run.stderr  # STATE written, and the kill shows
        re_read = [i for i in run.ids if i in seen]
        largest_page = max(r.count for r in sim.export_requests())
        assert len(re_read) <= largest_page, "a resume re-read more than about a page"
        seen.update(run.ids)
        if run.states:
            state = {"bookmarks": run.states[-1]["bookmarks"]}
        sim.requests.clear()

    final = run_tap(tmp_path, config, state)
    assert final.returncode == 0, final.stderr
    seen.update(final.ids)
    assert seen == {e["id"] for e in events}
