"""A new user's mistakes: each ends the run with one ERROR line naming the file or the setting, exit 1."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tap_zendesk_ticket_events.inputs import json_error
from tests.conftest import START_DATE, make_config
from tests.runners import TapRun, run_tap_in_process
from zendesk_simulator import API_TOKEN, EMAIL, Simulator, make_events

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"subdomain": "acme", "email": EMAIL, "api_token": API_TOKEN, "start_date": START_DATE}
TRAILING_COMMA = '{\n  "subdomain": "acme",\n  "api_token": "%s",\n}\n' % API_TOKEN  # noqa: UP031 - JSON braces


def run_args(tmp_path: Path, *args: str) -> TapRun:
    """Run the tap in ``tmp_path`` with these arguments, as a user would type them."""
    return run_tap_in_process(None, extra_args=args, cwd=tmp_path)


def the_error(run: TapRun) -> str:
    """The one ERROR line of a run that failed as it should: exit 1, no traceback, no output."""
    assert run.returncode == 1, run.stderr
    line = run.one_error_line()
    assert run.stdout == ""
    return line


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    return "config.json"


# --- the config file -------------------------------------------------------------------------


def test_config_with_a_trailing_comma_names_the_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(TRAILING_COMMA)

    line = the_error(run_args(tmp_path, "--config", "config.json"))

    assert "The config file 'config.json' (--config) is not valid JSON" in line
    assert "trailing comma before '}' at line 3, column 42" in line


@pytest.mark.parametrize(
    ("doc", "message", "pos", "expected"),
    [
        # Python 3.11 and 3.12: the error of the token after the comma, at the closing bracket.
        ('{"a": 1,\n}', "Expecting property name enclosed in double quotes", 9, "before '}' at line 1, column 8"),
        # Python 3.13 and 3.14 name the comma, at the comma.
        ('{"a": 1,\n}', "Illegal trailing comma before end of object", 7, "before '}' at line 1, column 8"),
        ("[1,]", "Illegal trailing comma before end of array", 2, "before ']' at line 1, column 3"),
    ],
)
def test_a_trailing_comma_reads_the_same_on_every_python(doc: str, message: str, pos: int, expected: str) -> None:
    assert json_error(json.JSONDecodeError(message, doc, pos)) == f"a trailing comma {expected}"


def test_config_with_a_json_error_names_the_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "subdomain": "acme"\n  "start_date": "2024-01-01"\n}')

    line = the_error(run_args(tmp_path, "--config", "config.json"))

    assert "'config.json'" in line
    assert "Expecting ',' delimiter at line 3, column 3" in line


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    line = the_error(run_args(tmp_path, "--config", "conifg.json"))

    assert "The config file 'conifg.json' (--config) does not exist" in line
    assert str(tmp_path / "conifg.json") in line


def test_missing_config_file_is_named_in_discovery_too(tmp_path: Path) -> None:
    line = the_error(run_args(tmp_path, "--config", "conifg.json", "--discover"))

    assert "'conifg.json'" in line


@pytest.mark.parametrize(
    ("content", "said"),
    [("", "is empty"), ("  \n", "is empty"), ('["acme"]', "holds a JSON array"), ("NaN", "NaN is not a JSON value")],
    ids=["empty", "blank", "array", "NaN"],
)
def test_config_file_that_is_no_json_object_is_named(tmp_path: Path, content: str, said: str) -> None:
    (tmp_path / "config.json").write_text(content)

    line = the_error(run_args(tmp_path, "--config", "config.json"))

    assert "'config.json'" in line
    assert said in line


def test_config_that_is_a_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()

    assert "The config file 'conf' (--config) is a directory" in the_error(run_args(tmp_path, "--config", "conf"))


# --- the state file --------------------------------------------------------------------------


def test_empty_state_file_is_an_error_naming_it(tmp_path: Path, config_file: str) -> None:
    # What `tail -n 1 state-out.jsonl > state.json` leaves after a run that emitted no STATE.
    (tmp_path / "state.json").write_text("")

    line = the_error(run_args(tmp_path, "--config", config_file, "--state", "state.json"))

    assert "The state file 'state.json' (--state) is empty" in line
    assert "run without --state" in line


def test_missing_state_file_is_named(tmp_path: Path, config_file: str) -> None:
    line = the_error(run_args(tmp_path, "--config", config_file, "--state", "sate.json"))

    assert "The state file 'sate.json' (--state) does not exist" in line


def test_state_file_with_a_json_error_names_the_line_and_column(tmp_path: Path, config_file: str) -> None:
    (tmp_path / "state.json").write_text('{"bookmarks": {"ticket_events": {"replication_key_value": 17000}}')

    line = the_error(run_args(tmp_path, "--config", config_file, "--state", "state.json"))

    assert "The state file 'state.json' (--state) is not valid JSON" in line
    assert "Expecting ',' delimiter at line 1, column 66" in line  # cut short


def test_state_file_holding_a_whole_state_message_is_refused(tmp_path: Path, config_file: str) -> None:
    # The last line of the tap's own output, where a target's state value belongs.
    message = {"type": "STATE", "value": {"bookmarks": {"ticket_events": {"replication_key_value": 1}}}}
    (tmp_path / "state.json").write_text(json.dumps(message))

    line = the_error(run_args(tmp_path, "--config", config_file, "--state", "state.json"))

    assert "'state.json'" in line
    assert "whole Singer STATE message" in line


def test_state_file_with_malformed_bookmarks_is_named(tmp_path: Path, config_file: str) -> None:
    (tmp_path / "state.json").write_text('{"bookmarks": {"ticket_events": 1700000000}}')

    line = the_error(run_args(tmp_path, "--config", config_file, "--state", "state.json"))

    assert "The state file 'state.json' (--state) is malformed: 'bookmarks'" in line


def test_state_file_with_a_byte_order_mark_still_resumes(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    (tmp_path / "config.json").write_text(json.dumps(make_config(sim)))
    state = {"bookmarks": {"ticket_events": {"replication_key": "end_time", "replication_key_value": 1700000000}}}
    (tmp_path / "state.json").write_text("\ufeff" + json.dumps(state), encoding="utf-8")

    run = run_args(tmp_path, "--config", "config.json", "--state", "state.json")

    assert run.returncode == 0, run.stderr
    assert {r.params["start_time"] for r in sim.export_requests("ticket_events")} >= {"1700000000"}


# --- the catalog file ------------------------------------------------------------------------


def test_catalog_file_with_a_json_error_is_named(tmp_path: Path, config_file: str) -> None:
    (tmp_path / "catalog.json").write_text('{"streams": [}')

    line = the_error(run_args(tmp_path, "--config", config_file, "--catalog", "catalog.json"))

    assert "The catalog file 'catalog.json' (--catalog) is not valid JSON" in line
    assert "line 1, column 14" in line


def test_missing_catalog_file_is_named(tmp_path: Path, config_file: str) -> None:
    line = the_error(run_args(tmp_path, "--config", config_file, "--catalog", "catalgo.json"))

    assert "The catalog file 'catalgo.json' (--catalog) does not exist" in line


# --- settings --------------------------------------------------------------------------------

SUBDOMAINS = [
    ("Acme", "got 'Acme': set 'acme'."),
    ("acme_corp", "'_' cannot be part of a subdomain"),
    ("acme.zendesk.com", "got the address 'acme.zendesk.com': set 'acme'."),
    ("https://acme.zendesk.com", "got the address 'https://acme.zendesk.com': set 'acme'."),
]


@pytest.mark.parametrize(("subdomain", "said"), SUBDOMAINS, ids=[s[0] for s in SUBDOMAINS])
def test_bad_subdomain_says_what_a_subdomain_is_and_what_to_set(tmp_path: Path, subdomain: str, said: str) -> None:
    line = the_error(run_tap_in_process(tmp_path, {**CONFIG, "subdomain": subdomain}))

    assert "Setting 'subdomain' must be the name before .zendesk.com in your Zendesk address" in line
    assert said in line
    assert "^[a-z0-9]" not in line  # the rule in words, not the validator's regex


def test_subdomain_and_api_url_together_are_refused(tmp_path: Path) -> None:
    config: dict[str, Any] = {**CONFIG, "api_url": "https://acme.zendesk.com"}

    line = the_error(run_tap_in_process(tmp_path, config))

    assert "Settings 'subdomain' and 'api_url' are both set: set only one" in line


def test_the_start_line_names_the_host_called(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))

    run = run_tap_in_process(tmp_path, make_config(sim))

    assert run.returncode == 0, run.stderr
    start = next(line for line in run.stderr.splitlines() if "ticket_events: exporting from" in line)
    assert f"from {sim.url};" in start


# --- the files the README has people create ---------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_files_the_readme_creates_are_git_ignored() -> None:
    created = [
        "config.json",
        "state.json",
        "state-out.jsonl",
        "ticket_events-20240101T000000.jsonl",
        "target-config.json",
        "target-out.txt",
    ]

    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *created], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert proc.stdout.split() == created
