"""The simulator's command line: what docs/running.md lists is what it takes, and it serves as printed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.docs import page
from tests.runners import run_tap
from zendesk_simulator.__main__ import parser

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_lists_every_option_of_the_simulator() -> None:
    readme = page("docs/running.md")
    table = readme.split("<!-- simulator-options:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `(--[a-z-]+)", table, re.M))
    options = {o for action in parser()._actions for o in action.option_strings if o.startswith("--") and o != "--help"}
    assert listed == options


def test_a_simulator_started_with_faults_and_oauth_serves_the_tap_it_prints_a_config_for(tmp_path: Path) -> None:
    """The OAuth config it prints, a short token lifetime and two queued faults: the tap still exports all."""
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zendesk_simulator",
            "--events",
            "400",
            "--shapes",
            "recorded",
            "--dialect",
            "recorded",
            "--fault",
            "503-retry-after",
            "--fault",
            "429",
            "--retry-after",
            "0",
            "--oauth-token-lifetime",
            "300",
            "--ai-agent-share",
            "0.3",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        oauth = None
        for line in sim.stdout:
            if line.startswith("OAuth config.json"):
                oauth = json.loads(line.split(": ", 1)[1])
                break
        assert oauth is not None, "the simulator printed no OAuth config"
        config = {**oauth, "oauth_token_store": str(tmp_path / "store.json")}
        run = run_tap(tmp_path, config, env={"LOGLEVEL": "INFO"})
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()  # left open, it is a ResourceWarning (an error in this suite)

    assert run.returncode == 0, run.stderr
    assert len(set(run.ids)) == 400  # AI-agent tickets included: the tap asks for every ticket
    assert "Rate limited by Zendesk" in run.stderr
    assert "Refreshed the OAuth access token (valid for 300 s)" in run.stderr
