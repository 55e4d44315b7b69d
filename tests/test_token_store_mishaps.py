"""The OAuth grant survives every mishap of the file token store (issue 25).

Each test first has a good run save a rotated refresh token (the configured one is dead from
then on: only the store can carry the next run), then does to the store what a person, an
upgrade, a container or a full disk does, and checks that the refresh token Zendesk still
accepts is still in a file: the run either goes on, or stops before any token request with one
line naming the store, and a later run (the mishap repaired) still works.

The tap runs its command line in process (``run_tap_in_process``), or as a subprocess where the
process is what the test changes (its capabilities, its os.write): its ERROR line is what a
person reads. Every run is checked for secrets in its output and in every file but the stores.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.runners import SECRETS, TapRun, hermetic_env, run_tap_in_process, tap_args, tap_command, token_requests
from tests.test_oauth import oauth_config
from zendesk_simulator import Simulator, make_events

if TYPE_CHECKING:
    from collections.abc import Iterator

SECOND_CLIENT = ("sim-oauth-client-b", "sim-client-secret-b-0123456789")


def live_refresh_token(sim: Simulator, store: Path) -> bool:
    """True when the store holds a refresh token Zendesk still accepts: the grant is intact."""
    token = json.loads(store.read_text())["refresh_token"]
    return token in sim.oauth.refresh_tokens


def run_oauth(sim: Simulator, tmp_path: Path, config: dict[str, Any], name: str, **env: str) -> TapRun:
    """The tap's command line, in process; its outputs under ``tmp_path/runs/name``."""
    outputs = tmp_path / "runs" / name
    outputs.mkdir(parents=True)
    run = run_tap_in_process(outputs, config, env=env)
    assert_no_secret_outside_stores(sim, tmp_path, run)
    return run


def assert_no_secret_outside_stores(sim: Simulator, root: Path, run: TapRun) -> None:
    """No secret in the run's output or STATE, nor in any file under ``root`` but configs and stores."""
    accounts = [sim, *sim.accounts.values()]
    secrets = [*SECRETS, *(s for a in accounts for s in (a.oauth.client_secret, *a.oauth.other_clients.values()))]
    secrets += [token for a in accounts for token in a.oauth.issued]
    printed = run.stdout + run.stderr + json.dumps(run.states)
    assert not [s for s in secrets if s in printed], "a secret leaked into the output"
    for path in root.rglob("*"):
        if path.is_dir() or path.name in ("config.json", "filler") or path.name.endswith(STORE_NAMES):
            continue  # configs hold what the user put there; stores hold the tokens, by design
        content = path.read_bytes().decode(errors="replace")
        assert not any(secret in content for secret in secrets), f"a secret was written to {path.name}"


STORE_NAMES = ("oauth-token.json", "tokens.json")


def good_run(sim: Simulator, tmp_path: Path, config: dict[str, Any], name: str = "good", **env: str) -> TapRun:
    sim.oauth.expire_access_tokens()  # the run must refresh, and so rotate the configured token away
    run = run_oauth(sim, tmp_path, config, name, **env)
    assert run.returncode == 0, run.stderr
    return run


# --- 1. never overwrite what cannot be read ------------------------------------------------


@pytest.mark.parametrize(
    ("mishap", "said"),
    [
        ("trailing-comma", "it is not valid JSON at line"),
        ("version-2", "it is of version 2, written by a newer release of the tap"),
        ("expires-at-string", "its 'expires_at' is a string, not a number"),
        ("not-utf8", "it cannot be read (it is not UTF-8 text)"),
    ],
)
def test_a_store_the_tap_cannot_read_is_left_as_it_is_and_no_token_is_requested(
    sim: Simulator, tmp_path: Path, mishap: str, said: str
) -> None:
    sim.set_events(make_events(20))
    config = oauth_config(sim, tmp_path)
    good_run(sim, tmp_path, config)
    store = Path(config["oauth_token_store"])
    good = store.read_bytes()
    data = json.loads(good)
    if mishap == "trailing-comma":  # a hand edit
        broken = good.rstrip().removesuffix(b"}").rstrip() + b",\n}\n"
    elif mishap == "version-2":  # a rollback after an upgrade
        broken = json.dumps({**data, "version": 2, "new_field": "x"}).encode()
    elif mishap == "expires-at-string":
        broken = json.dumps({**data, "expires_at": "2026-12-05T10:00:00Z"}).encode()
    else:
        broken = good.replace(b'"version"', b'"v\xe9rsion"')
    store.write_bytes(broken)
    sim.oauth.expire_access_tokens()
    before = len(token_requests(sim))

    run = run_oauth(sim, tmp_path, config, "mishap")

    assert run.returncode == 1
    line = run.one_error_line()
    assert f"The OAuth token store {store} cannot be used: {said}" in line
    assert "It is left as it is and no token was requested" in line
    assert "invalid_grant" not in run.stderr
    assert store.read_bytes() == broken, "the file was changed"
    assert len(token_requests(sim)) == before, "a token was requested"
    assert data["refresh_token"] in sim.oauth.refresh_tokens, "the grant was spent"

    store.write_bytes(good)  # repaired: the grant is still there
    assert good_run(sim, tmp_path, config, name="repaired").returncode == 0


# --- 2. one store per account and OAuth client -------------------------------------------------


def test_two_oauth_clients_of_one_account_each_keep_their_own_default_store(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    client_b, secret_b = SECOND_CLIENT
    sim.oauth.other_clients[client_b] = secret_b
    home = tmp_path / "xdg"
    a = oauth_config(sim, tmp_path, oauth_token_store=None)
    b = oauth_config(
        sim, tmp_path, oauth_token_store=None, client_id=client_b, client_secret=secret_b,
        refresh_token=sim.oauth.issue_tokens(client_b)[1],
    )  # fmt: skip

    # A, then B, then each again: each refresh rotates the configured token away.
    for n, config in enumerate([a, b, a, b]):
        sim.oauth.expire_access_tokens()
        run = run_oauth(sim, tmp_path, config, f"run{n}", XDG_CONFIG_HOME=str(home))
        assert run.returncode == 0, run.stderr
        assert len(run.ids) == 20
    assert [r.status for r in token_requests(sim)] == [200] * 4
    stores = sorted((home / "tap-zendesk-ticket-events").glob("*-oauth-token.json"))
    assert len(stores) == 2
    assert all(sim.oauth.client_id not in s.name and client_b not in s.name for s in stores)
    assert all(live_refresh_token(sim, s) for s in stores)


def test_two_accounts_behind_one_host_each_keep_their_own_default_store(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    beta = sim.add_account("/beta")
    beta.set_events(make_events(30))
    home = tmp_path / "xdg"
    root = oauth_config(sim, tmp_path, oauth_token_store=None)
    other = oauth_config(beta, tmp_path, oauth_token_store=None)

    for n, (account, config, events) in enumerate([(sim, root, 20), (beta, other, 30)] * 2):
        account.oauth.expire_access_tokens()
        run = run_oauth(sim, tmp_path, config, f"run{n}", XDG_CONFIG_HOME=str(home))
        assert run.returncode == 0, run.stderr
        assert len(run.ids) == events
    assert [r.status for r in token_requests(sim)] == [200, 200]
    assert [r.status for r in token_requests(beta)] == [200, 200]
    stores = sorted((home / "tap-zendesk-ticket-events").glob("*-oauth-token.json"))
    assert len(stores) == 2
    assert len([s for s in stores if "-beta-" in s.name]) == 1
    assert sorted(json.loads(s.read_text())["account"] for s in stores) == [sim.url, beta.url]


def test_a_store_file_written_for_another_client_is_refused_even_under_another_name(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.set_events(make_events(20))
    client_b, secret_b = SECOND_CLIENT
    sim.oauth.other_clients[client_b] = secret_b
    shared = str(tmp_path / "store" / "shared-oauth-token.json")
    a = oauth_config(sim, tmp_path, oauth_token_store=shared)
    good_run(sim, tmp_path, a)
    before = Path(shared).read_bytes()
    b = oauth_config(
        sim, tmp_path, oauth_token_store=shared, client_id=client_b, client_secret=secret_b,
        refresh_token=sim.oauth.issue_tokens(client_b)[1],
    )  # fmt: skip
    requests = len(token_requests(sim))

    run = run_oauth(sim, tmp_path, b, "other-client")

    assert run.returncode == 1
    line = run.one_error_line()
    assert f"The OAuth token store {shared} cannot be used: it belongs to another OAuth client" in line
    assert client_b not in run.stderr
    assert Path(shared).read_bytes() == before
    assert len(token_requests(sim)) == requests
    assert good_run(sim, tmp_path, a, name="a-again").returncode == 0


def test_a_store_named_the_old_way_is_taken_over_once(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    home = tmp_path / "xdg"
    plugin_dir = home / "tap-zendesk-ticket-events"
    legacy = plugin_dir / f"{sim.url.removeprefix('http://').replace(':', '-')}-oauth-token.json"
    # What an older release left: the store under the host's name, without a record of its owner.
    config = oauth_config(sim, tmp_path, oauth_token_store=None)
    good_run(sim, tmp_path, {**config, "oauth_token_store": str(legacy)}, name="older-release")
    old = json.loads(legacy.read_text())
    legacy.write_text(json.dumps({k: v for k, v in old.items() if k not in ("account", "client_sha256")}))
    sim.oauth.expire_access_tokens()

    run = run_oauth(sim, tmp_path, config, "upgraded", XDG_CONFIG_HOME=str(home))

    assert run.returncode == 0, run.stderr
    assert f"Took over the OAuth token store {legacy}" in run.stderr
    assert not legacy.exists()
    (new,) = plugin_dir.glob("*-oauth-token.json")
    assert json.loads(new.read_text())["account"] == sim.url
    assert live_refresh_token(sim, new)
    # The refresh traded the old file's token (the configured one was rotated away long ago).
    assert token_requests(sim)[-1].oauth_generation == token_requests(sim)[-2].oauth_generation + 1

    sim.oauth.expire_access_tokens()
    again = run_oauth(sim, tmp_path, config, "again", XDG_CONFIG_HOME=str(home))
    assert again.returncode == 0, again.stderr
    assert "Took over" not in again.stderr


# --- 3. symlinks followed ---------------------------------------------------------------------


@pytest.mark.parametrize("target_exists", [False, True], ids=["dangling-link", "link-to-a-file"])
def test_a_symlinked_store_stays_a_link_and_its_target_holds_the_grant(
    sim: Simulator, tmp_path: Path, target_exists: bool
) -> None:
    sim.set_events(make_events(20))
    volume = tmp_path / "volume"  # a mounted volume, in a container
    volume.mkdir()
    target = volume / "tokens.json"
    link = tmp_path / "store" / "oauth-token.json"
    link.parent.mkdir()
    config = oauth_config(sim, tmp_path, oauth_token_store=str(link))
    if target_exists:
        good_run(sim, tmp_path, {**config, "oauth_token_store": str(target)}, name="before-link")
    link.symlink_to(target)

    for n in range(2):
        good_run(sim, tmp_path, config, name=f"run{n}")
        assert link.is_symlink(), "the link was replaced by a file"
        assert live_refresh_token(sim, target)
    # The lock and the temporary files live beside the target; nothing but the link beside it.
    assert sorted(p.name for p in link.parent.iterdir()) == ["oauth-token.json"]
    assert sorted(p.name for p in volume.iterdir()) == ["tokens.json", "tokens.json.lock"]
    # A container started again, with the volume and the link only: it goes on from the target.
    shutil.rmtree(tmp_path / "store")
    link.parent.mkdir()
    link.symlink_to(target)
    assert good_run(sim, tmp_path, config, name="new-container").returncode == 0


# --- 4. no refresh that cannot be saved -------------------------------------------------------


@contextlib.contextmanager
def tiny_filesystem(directory: Path) -> Iterator[bool]:
    """A 64 KiB tmpfs at ``directory`` (True), or a plain directory (False) where mounting is not allowed."""
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    ).returncode == 0 if shutil.which("mount") else False  # fmt: skip
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], check=True)


def run_subprocess(
    sim: Simulator,
    tmp_path: Path,
    config: dict[str, Any],
    name: str,
    *,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> TapRun:
    """The tap as its own process, for what the test changes in that process."""
    outputs = tmp_path / "runs" / name
    outputs.mkdir(parents=True)
    proc = subprocess.run(
        [*prefix, *tap_command(), *tap_args(outputs, config, None, ())],
        capture_output=True,
        text=True,
        env=hermetic_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    run = TapRun(proc.returncode, proc.stdout, proc.stderr)
    assert_no_secret_outside_stores(sim, tmp_path, run)
    return run


def fill(directory: Path) -> Path:
    """Fill the file system under ``directory`` to the last byte."""
    filler = directory / "filler"
    full = False
    with filler.open("wb", buffering=0) as handle:
        while not full:
            try:
                handle.write(b"\0" * 4096)
            except OSError as exc:
                full = exc.errno == errno.ENOSPC
                if not full:
                    raise
    return filler


def test_a_full_disk_stops_the_run_before_the_refresh_with_the_grant_intact(sim: Simulator, tmp_path: Path) -> None:
    """On a real 64 KiB tmpfs where this machine lets the test mount one (as root, it does); else
    ``ENOSPC`` is simulated in the tap's process at the write call (the test says which it ran)."""
    sim.set_events(make_events(20))
    volume = tmp_path / "volume"
    with tiny_filesystem(volume) as mounted:
        store = volume / "oauth-token.json"
        config = oauth_config(sim, tmp_path, oauth_token_store=str(store))
        good_run(sim, tmp_path, config)
        before = store.read_bytes()
        if mounted:
            filler = fill(volume)
            env = {}
        else:
            shim = tmp_path / "enospc"
            shim.mkdir()
            (shim / "sitecustomize.py").write_text(ENOSPC_SHIM)
            env = {"PYTHONPATH": str(shim), "ENOSPC_UNDER": str(volume)}
        sim.oauth.expire_access_tokens()
        requests = len(token_requests(sim))

        run = run_subprocess(sim, tmp_path, config, "full", env=env)

        print("ran on a real 64 KiB tmpfs" if mounted else "mounting refused: ENOSPC simulated at os.write")
        assert run.returncode == 1
        line = run.one_error_line()
        assert f"Cannot save to the OAuth token store {store} (No space left on device)" in line
        assert "no token was requested" in line
        assert len(token_requests(sim)) == requests, "a token was requested"
        assert store.read_bytes() == before
        assert live_refresh_token(sim, store)
        assert sorted(p.name for p in volume.iterdir() if p.name != "filler") == [store.name, store.name + ".lock"]

        if mounted:
            filler.unlink()
        assert good_run(sim, tmp_path, config, name="room-again").returncode == 0


#: Where mounting a tiny file system is not allowed: ENOSPC from every write to a file under
#: ENOSPC_UNDER, at the OS call the tap makes (what a full disk answers).
ENOSPC_SHIM = """\
import errno, os
_under = os.environ.get("ENOSPC_UNDER")
_write = os.write
def _full(fd, data):
    if _under and os.readlink(f"/proc/self/fd/{fd}").startswith(_under):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _write(fd, data)
os.write = _full
"""


def test_a_read_only_store_directory_stops_the_run_before_the_refresh(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    volume = tmp_path / "volume"
    with tiny_filesystem(volume) as mounted:
        if not mounted:
            pytest.skip("mounting a file system is not allowed here: no read-only volume to test on")
        store = volume / "oauth-token.json"
        config = oauth_config(sim, tmp_path, oauth_token_store=str(store))
        good_run(sim, tmp_path, config)
        subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
        sim.oauth.expire_access_tokens()
        requests = len(token_requests(sim))

        run = run_oauth(sim, tmp_path, config, "read-only")

        assert run.returncode == 1
        line = run.one_error_line()
        assert f"Cannot save to the OAuth token store {store} (Read-only file system)" in line
        assert len(token_requests(sim)) == requests
        assert live_refresh_token(sim, store)
        subprocess.run(["mount", "-o", "remount,rw", str(volume)], check=True)
        assert good_run(sim, tmp_path, config, name="writable-again").returncode == 0


def test_a_store_directory_the_run_may_not_write_stops_it_before_the_refresh(sim: Simulator, tmp_path: Path) -> None:
    """A real EACCES: root ignores permission bits, so the tap runs as root without the
    capabilities that let it (setpriv drops CAP_DAC_OVERRIDE), as any other user would run."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the tap without CAP_DAC_OVERRIDE")
    sim.set_events(make_events(20))
    config = oauth_config(sim, tmp_path)
    good_run(sim, tmp_path, config)
    store = Path(config["oauth_token_store"])
    store.parent.chmod(0o500)  # the owner may read, not create files
    sim.oauth.expire_access_tokens()
    requests = len(token_requests(sim))
    try:
        run = run_subprocess(
            sim, tmp_path, config, "eacces", prefix=("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
        )
    finally:
        store.parent.chmod(0o700)

    assert run.returncode == 1
    line = run.one_error_line()
    assert f"Cannot save to the OAuth token store {store} (Permission denied)" in line
    assert len(token_requests(sim)) == requests
    assert live_refresh_token(sim, store)
    assert good_run(sim, tmp_path, config, name="writable-again").returncode == 0


# --- 6. the invalid_grant line tells the truth ------------------------------------------------


def test_invalid_grant_for_the_stores_own_token_does_not_blame_an_empty_store(sim: Simulator, tmp_path: Path) -> None:
    sim.set_events(make_events(20))
    config = oauth_config(sim, tmp_path)
    good_run(sim, tmp_path, config)
    sim.oauth.refresh_tokens.clear()  # revoked, or rotated by a run that does not use this store
    sim.oauth.expire_access_tokens()

    run = run_oauth(sim, tmp_path, config, "revoked")

    assert run.returncode == 1
    line = run.one_error_line()
    store = config["oauth_token_store"]
    assert f"it is the one the token store {store} holds" in line
    assert "a run that does not use this store rotated it" in line
    assert "or the grant was revoked" in line
    assert "was empty" not in line
