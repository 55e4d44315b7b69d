"""Every Python the package names is one a test run covers, and the docs say where.

The classifiers are a promise to users; .ci/run keeps 3.11 (the host), 3.13 and 3.14 (Debian
roots, ``tasks.py pythons``), and the GitHub workflow's matrix is the only other place a
Python may come from (3.12).
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

import tasks
from tests.docs import ROOT, section

HOST = "3.11"  # .ci/run's own python3 runs the whole suite: Debian 12's


def classifiers() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.search(r"Python :: 3\.\d+$", c)}


def workflow_matrix() -> set[str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    return set(workflow["jobs"]["test"]["strategy"]["matrix"]["python"])


def test_each_python_the_classifiers_name_is_tested_and_no_other() -> None:
    local = {HOST, *tasks.DEBIAN_SUITES}
    assert classifiers() == local | workflow_matrix()
    assert workflow_matrix() <= classifiers()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (
        project["project"]["requires-python"] == f">={min(classifiers(), key=lambda v: tuple(map(int, v.split('.'))))}"
    )
    assert project["tool"]["ruff"]["target-version"] == "py311"
    assert project["tool"]["mypy"]["python_version"] == "3.11"


def test_ci_runs_the_other_pythons_and_never_skips_the_end_to_end_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "export CI=true" in commands
    assert commands.index("export CI=true") < commands.index("python3 tasks.py test")
    assert "python3 tasks.py pythons" in commands


def test_the_docs_say_where_each_python_is_tested() -> None:
    table = section("docs/development.md", "Pythons")
    rows = re.findall(r"^\| (3\.\d+) \| ([^|]+) \|", table, re.M)
    assert {version for version, _ in rows} == classifiers()
    for version, where in rows:
        assert ("GitHub workflow" in where) == (version in workflow_matrix()), version
        assert (".ci/run" in where) == (version in {HOST, *tasks.DEBIAN_SUITES}), version


# Not in a copy without git (the Debian roots themselves): the list of files comes from git.
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_the_root_gets_the_clone_as_git_sees_it_and_keeps_its_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "kept").write_text("synced by uv last time")
    (tmp_path / "tap_zendesk_ticket_events").mkdir()
    (tmp_path / "tap_zendesk_ticket_events" / "deleted_since.py").write_text("stale")

    tasks.copy_clone(tmp_path)

    assert (tmp_path / ".venv" / "kept").exists()
    assert not (tmp_path / "tap_zendesk_ticket_events" / "deleted_since.py").exists()
    assert (tmp_path / "tasks.py").read_bytes() == (ROOT / "tasks.py").read_bytes()
    assert (tmp_path / "tests" / "test_pythons.py").exists()
    assert not (tmp_path / ".git").exists()
    assert not any(p.name == "__pycache__" for p in tmp_path.rglob("*"))  # ignored files stay out


def test_mounts_are_found_under_a_root_and_only_there() -> None:
    assert "/proc" in tasks.mounts_under(Path("/"))
    assert tasks.mounts_under(Path("/proc"))[-1] == "/proc"  # deepest first, the root itself last
    assert tasks.mounts_under(ROOT / "docs") == []
