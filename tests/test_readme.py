"""The README's settings table is the tap's own ``--about`` output."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import tap_command

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_settings_table_matches_about() -> None:
    about = subprocess.run(
        [*tap_command(), "--about", "--format=markdown"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    table = [line for line in about.splitlines() if line.startswith("|")]
    text = README.read_text()
    documented = text.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    assert [line for line in documented.splitlines() if line.startswith("|")] == table
