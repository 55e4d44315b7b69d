"""Ready to publish: the Hub definition, meltano.yml and --about say the same; the release is one.

The Hub definition (hub/), the project's meltano.yml and the tap's own ``--about`` are three
descriptions of one plugin: every setting with its kind, default and secrecy, the capabilities,
the default selection and the auth groups. They are held against one another here, so none can
drift. The version, its changelog entry, its commit in the install lines (README, docs/, hub/), the LICENSE and
the package metadata are checked in the built wheel.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tap_zendesk_ticket_events.settings import Settings
from tests.docs import marked_block, pages
from tests.runners import tap_output

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub" / "tap-zendesk-ticket-events--example-org.yml"
OWNER_URL = "https://github.com/example-org/tap-zendesk-ticket-events"


@functools.cache
def about() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(tap_output("--about", "--format=json"))
    return data


def hub() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HUB.read_text())
    return data


def meltano_tap() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    tap: dict[str, Any] = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-zendesk-ticket-events")
    return tap


def readme_tap() -> dict[str, Any]:
    tap: dict[str, Any] = yaml.safe_load(marked_block("existing-project"))["plugins"]["extractors"][0]
    return tap


def version() -> str:
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found
    return found[1]


def test_every_setting_has_the_same_kind_default_and_secrecy_everywhere() -> None:
    properties = about()["settings"]["properties"]
    hub_settings = {s["name"]: s for s in hub()["settings"]}
    project_settings = {s["name"]: s for s in meltano_tap()["settings"]}
    assert set(hub_settings) == set(properties) == set(project_settings)
    for name, prop in properties.items():
        ours, project = hub_settings[name], project_settings[name]
        assert ours["kind"] == project["kind"], name
        assert ours.get("sensitive", False) == project.get("sensitive", False) == bool(prop.get("secret")), name
        assert ours.get("value") == prop.get("default"), name
        assert ours.get("options") == project.get("options"), name
        if "enum" in prop:
            assert [o["value"] for o in ours["options"]] == prop["enum"], name
        assert ours["label"], name
        assert ours["description"], name
    # A token store URL may hold a database password: a secret like the tokens.
    assert hub_settings["oauth_token_store"]["sensitive"] is True


def test_capabilities_selection_and_groups_agree() -> None:
    assert set(hub()["capabilities"]) == set(about()["capabilities"]) == set(meltano_tap()["capabilities"])
    assert set(readme_tap()["capabilities"]) == set(about()["capabilities"])
    # Without select, Meltano would select all four streams: the metric events export would share
    # the budget and comments would be sideloaded.
    assert hub()["select"] == meltano_tap()["select"] == readme_tap()["select"] == ["ticket_events.*"]
    groups = hub()["settings_group_validation"]
    assert groups == meltano_tap()["settings_group_validation"] == readme_tap()["settings_group_validation"]
    assert about()["settings"]["dependentRequired"] == {
        "api_token": ["email"],
        "refresh_token": ["client_id", "client_secret"],
        "client_id": ["client_secret"],
        "client_secret": ["client_id"],
    }


def test_each_settings_group_is_a_working_configuration_and_they_cover_every_auth_method() -> None:
    values = {
        "subdomain": "acme",
        "api_url": "https://acme.example.com",
        "email": "admin@acme.com",
        "api_token": "t",
        "access_token": "a",
        "refresh_token": "r",
        "client_id": "c",
        "client_secret": "s",
        "start_date": "2024-01-01T00:00:00Z",
    }
    methods = set()
    for group in hub()["settings_group_validation"]:
        settings = Settings.from_config({name: values[name] for name in group})  # refuses a group that is not one
        methods.add((settings.auth_method, "subdomain" in group))
    every_method = ("oauth_client_credentials", "api_token", "access_token", "oauth_refresh")
    assert methods == {(m, sub) for m in every_method for sub in (True, False)}
    # Client credentials lead: the recommended way in after API tokens end (2027-04-30).
    assert (
        Settings.from_config({name: values[name] for name in hub()["settings_group_validation"][0]}).auth_method
        == "oauth_client_credentials"
    )


def test_the_release_is_one_version_everywhere() -> None:
    ours = version()
    assert about()["version"] == ours
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{ours}] - " in changelog
    releases = re.findall(r"^## \[?(\d+\.\d+\.\d+)", changelog, re.M)
    assert releases[0] == ours, "the current version is the newest release"
    readme = "".join(p.read_text() for p in pages())
    # No release tag exists (nor travels with a copy of the repository): a release is its commit.
    newest = changelog.split(f"## [{ours}] - ", 1)[1].split("\n## ", 1)[0]
    (commit,) = re.findall(r"^Commit `([0-9a-f]{40})`\.$", newest, re.M)
    pinned = set(re.findall(r"tap-zendesk-ticket-events\.git@([\w.<>-]+)", readme + HUB.read_text()))
    assert pinned == {commit}, "every Git install line pins the newest release's commit"
    assert not re.search(r"\.git@v\d|/tag/v\d|compare/v\d", readme + HUB.read_text() + changelog), "a tag"
    if (ROOT / ".git").exists():  # a clone: the commit is in its history and sets this version
        released = subprocess.run(
            ["git", "show", f"{commit}:pyproject.toml"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert f'\nversion = "{ours}"\n' in released
    for text in (readme, HUB.read_text(), (ROOT / "pyproject.toml").read_text(), changelog):
        owners = set(re.findall(r"https://github\.com/([\w.-]+)/tap-zendesk-ticket-events", text))
        assert owners <= {"example-org"}, "one placeholder owner everywhere"
    assert f"v{ours}" in tap_output("--version")


def test_the_wheel_carries_the_license_and_the_metadata(tmp_path: Path) -> None:
    uv = Path(sys.executable).parent / "uv"
    subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        license_text = archive.read(next(n for n in names if n.endswith("licenses/LICENSE"))).decode()
    assert "Apache License" in license_text
    assert "Version 2.0" in license_text
    assert not any(n.startswith(("zendesk_simulator/", "tests/", "hub/")) for n in names), "test tooling stays out"
    assert "tap_zendesk_ticket_events/py.typed" in names
    assert "tap_zendesk_ticket_events/schemas/ticket_events.json" in names
    assert f"Version: {version()}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    for line in (
        "Classifier: Operating System :: OS Independent",
        "Classifier: Programming Language :: Python :: 3.11",
        "Classifier: Programming Language :: Python :: 3.14",
        f"Project-URL: Repository, {OWNER_URL}",
        f"Project-URL: Changelog, {OWNER_URL}/blob/main/CHANGELOG.md",
        "Provides-Extra: postgres",
    ):
        assert line in metadata, line
    assert "meltano_sdk" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "Programming Language :: Python :: 3.10" not in metadata, "3.10 is past its end of life and untested"
    assert re.search(r"^Author-email: .+", metadata, re.M)
