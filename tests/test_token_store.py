"""The file token store's promises that need no PostgreSQL: its directory is private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.runners import assert_no_oauth_secret, run_tap
from tests.test_oauth import oauth_config
from zendesk_simulator import Simulator, make_events


def test_the_default_store_directory_is_0700_even_when_meltano_made_it_first(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    project = tmp_path / "project"
    plugin_dir = project / ".meltano" / "run" / "tap-zendesk-ticket-events"
    plugin_dir.mkdir(parents=True, mode=0o755)
    plugin_dir.chmod(0o755)  # as Meltano leaves it (whatever this umask says)
    config = oauth_config(sim, tmp_path, oauth_token_store=None)  # the default store

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    run = run_tap(outputs, config, name="run", env={"MELTANO_PROJECT_ROOT": str(project)})
    assert_no_oauth_secret(sim, outputs, run)  # the project's store file holds tokens, by design

    assert run.returncode == 0, run.stderr
    stores = list(plugin_dir.glob("*-oauth-token.json"))
    assert len(stores) == 1
    assert stat.S_IMODE(plugin_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(stores[0].stat().st_mode) == 0o600


def test_a_store_path_set_by_hand_keeps_its_directory_mode(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(10))
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    config = oauth_config(sim, tmp_path, oauth_token_store=str(shared / "oauth-token.json"))

    run = run_tap(tmp_path, config, oauth=sim)

    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not the tap's to change: it may be /tmp
    assert stat.S_IMODE((shared / "oauth-token.json").stat().st_mode) == 0o600
    assert os.access(shared, os.W_OK)
