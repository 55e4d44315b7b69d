"""A developer's `.env` and shell settings change no test's outcome.

`cp .env.example .env` (the README's first step with Meltano) used to break the suite at
collection: the SDK's test class (test_core.py) and every `--config ENV` run of the tap loaded
the clone's `.env` (python-dotenv finds it from the SDK's own file, in `.venv` inside the
clone) and any `TAP_ZENDESK_TICKET_EVENTS_*` variable of the shell, on top of the test's own
settings: "More than one auth method is configured", "Settings 'subdomain' and 'api_url' are
both set". conftest.py now takes the settings variables out of the test process's environment
and makes the SDK find no `.env`, in the test process and in the tap's subprocesses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import conftest
from tests.runners import SETTINGS_PREFIXES, run_command
from tests.test_meltano import NOT_COPIED, meltano_env

ROOT = Path(__file__).resolve().parent.parent
DOTENV = ROOT / ".env"

# What a developer's shell may export for a real account, on top of the .env.
SHELL_SETTINGS = {
    "TAP_ZENDESK_TICKET_EVENTS_SUBDOMAIN": "acme",
    "TAP_ZENDESK_TICKET_EVENTS_EMAIL": "admin@acme.com",
    "TAP_ZENDESK_TICKET_EVENTS_API_TOKEN": "real-token-from-the-shell",
    "TAP_ZENDESK_TICKET_EVENTS_ACCESS_TOKEN": "real-access-token-from-the-shell",
    "TAP_ZENDESK_TICKET_EVENTS_START_DATE": "2024-01-01T00:00:00Z",
    "TAP_ZENDESK_TICKET_EVENTS_PAGE_SIZE": "7",
    "TARGET_POSTGRES_HOST": "db.example.invalid",
    "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "production",
    "TARGET_JSONL_DESTINATION_PATH": "/nonexistent",
    "MELTANO_ENVIRONMENT": "prod",
}

# The tests that used to break, and one of each way the suite runs the tap.
PROOF = (
    "tests/test_core.py",  # the SDK's test class, built at collection
    "tests/test_settings.py::test_config_from_environment",  # --config ENV, in a subprocess
    "tests/test_sdk_hooks.py::test_invoke_ends_a_refused_configuration_with_one_line",  # --config ENV, a bare env
    "tests/test_settings.py::test_discovery_needs_no_config_and_no_network",  # the tap as a subprocess
    "tests/test_export.py::test_pages_follow_end_time_and_stop_on_end_of_stream",  # the tap in process
    "tests/test_hermetic.py::test_this_process_sees_no_shell_setting",
)


@pytest.fixture
def dotenv_in_the_clone() -> Iterator[Path]:
    """A copy of .env.example as the clone's .env, removed afterwards.

    A developer's own .env is never touched: when there is one, the check runs with it in place
    (the very case it is about) and nothing is written or removed.
    """
    try:
        with DOTENV.open("x", encoding="utf-8") as created:  # "x": never over an existing file
            created.write((ROOT / ".env.example").read_text(encoding="utf-8"))
    except FileExistsError:
        yield DOTENV
        return
    try:
        yield DOTENV
    finally:
        DOTENV.unlink(missing_ok=True)


def test_a_dotenv_and_shell_settings_change_no_outcome(dotenv_in_the_clone: Path) -> None:
    env = {**os.environ, **SHELL_SETTINGS}
    env.pop("PYTEST_ADDOPTS", None)
    proc = run_command([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *PROOF], cwd=ROOT, env=env)
    assert proc.returncode == 0, f"with {dotenv_in_the_clone} and shell settings:\n{proc.stdout[-4000:]}{proc.stderr}"
    assert " passed" in proc.stdout
    assert "skipped" not in proc.stdout.splitlines()[-1]


def test_this_process_sees_no_shell_setting(monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config) -> None:
    """No settings variable reaches this process: none is left of the shell's (the run above
    exports SHELL_SETTINGS), and conftest's start-up scrub, run again here with them set, takes
    each of them out (and keeps it to give back at the end)."""
    assert [name for name in os.environ if name.startswith(SETTINGS_PREFIXES)] == []
    for name, value in SHELL_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(conftest, "_SCRUBBED", {})

    conftest.pytest_configure(pytestconfig)

    assert [name for name in os.environ if name.startswith(SETTINGS_PREFIXES)] == []
    assert conftest._SCRUBBED == SHELL_SETTINGS


def test_the_sdk_still_looks_up_dotenv_where_conftest_hides_it() -> None:
    """conftest.py replaces find_dotenv in the SDK module that calls it: if the SDK moves it,
    a developer's .env reaches the tests again."""
    from singer_sdk.configuration import _dict_config  # noqa: PLC0415

    assert _dict_config.find_dotenv() == "", (  # type: ignore[attr-defined]
        "singer_sdk.configuration._dict_config.find_dotenv is not conftest's: the SDK changed how it "
        "finds a .env, so hide_dotenv_from_the_sdk (tests/conftest.py) no longer hides it"
    )
    source = Path(_dict_config.__file__).read_text(encoding="utf-8")
    assert "find_dotenv()" in source, "the SDK no longer calls find_dotenv(): check how it reads a .env now"


def test_meltano_projects_of_the_tests_hold_no_dotenv_and_no_shell_setting() -> None:
    """test_meltano.py's copy of the project leaves any .env behind, and Meltano's environment
    holds only the settings the test sets."""
    assert ".env" in NOT_COPIED(str(ROOT), [".env", "meltano.yml"])
    shell = {**os.environ, **SHELL_SETTINGS}
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(shell)
        env = meltano_env("http://127.0.0.1:9", "e2e_schema")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for name, value in SHELL_SETTINGS.items():
        assert env.get(name) != value, f"{name} from the shell reached Meltano"
    assert env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] == "e2e_schema"
