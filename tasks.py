#!/usr/bin/env python3
"""Project tasks that need nothing but Python >= 3.11: ``python3 tasks.py <task> [args]``.

It plays the part of a Makefile on machines that have no ``make``. Every task first makes
sure ``.venv`` holds exactly what ``uv.lock`` pins (uv itself is installed into ``.venv``
from PyPI), and ``.venv-meltano`` the lock's ``meltano`` group, so a fresh clone needs no
other step.

Tasks:
  demo      run `meltano run tap-zendesk-ticket-events target-jsonl` on the bundled Zendesk
            simulator, then say how many events landed in output/demo/ and where to look
  test      lint, type-check, then the whole test suite (what CI runs), ending with the 15
            slowest tests; extra args go to pytest
  quick     lint, type-check, then every test that needs neither PostgreSQL, Meltano nor a
            Singer target (pytest -m "not postgres and not meltano and not target"): the
            lane to run while editing; extra args go to pytest
  pytest    only the test suite; extra args go to pytest
  bench     the performance benchmark against the simulator (a few minutes); prints a table
  lint      ruff check, ruff format --check, mypy --strict, actionlint (.github/workflows)
  format    ruff format and ruff check --fix
  setup     only create or refresh .venv and .venv-meltano
  pythons   the quick lane under Python 3.13 (a Debian 13 root) and 3.14 (a Debian unstable
            root), each made by debootstrap (needs root) and kept in /var/cache/tap-zendesk-
            ticket-events/pythons ($PYTHONS_CACHE) for the next run; `pythons 3.14` runs one;
            other args go to pytest. .ci/run runs it after `test`
  canary    the test suite against the newest singer-sdk release on PyPI, in a throwaway
            virtualenv (.venv stays on the lock); extra args go to pytest. Not part of CI.
            CANARY_SDK_VERSION=x.y.z tests that release instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
UV_VERSION = "0.13.8"
# Meltano has its own environment: its pins must not move the tap's (see [tool.uv] in
# pyproject.toml). It installs the tap and the targets into .meltano/ with uv.
MELTANO_VENV = ROOT / ".venv-meltano"
MELTANO = MELTANO_VENV / BIN.name / "meltano"
DEMO_EVENTS = 5000
DEMO_JSONL = ROOT / "output" / "demo" / "ticket_events.jsonl"
DEMO_STATE_ID = "demo:tap-zendesk-ticket-events-to-target-jsonl"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT, env={**os.environ, **(env or {})})
    if code:
        sys.exit(code)


def setup() -> None:
    """Create .venv with the running Python and sync it, and .venv-meltano, to uv.lock."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        pip: list[str | Path] = [BIN / "python", "-m", "pip", "--disable-pip-version-check"]
        if subprocess.call([str(a) for a in [*pip, "--version"]], stdout=subprocess.DEVNULL) != 0:
            run(BIN / "python", "-m", "ensurepip", "--default-pip")
        run(*pip, "install", "--quiet", f"uv=={UV_VERSION}")
    sync = (BIN / "uv", "sync", "--locked", "--quiet", "--python", BIN / "python")
    run(*sync, env={"UV_PROJECT_ENVIRONMENT": str(VENV)})
    # Meltano in .venv-meltano: the lock's `meltano` group alone, without the project.
    run(*sync, "--only-group", "meltano", env={"UV_PROJECT_ENVIRONMENT": str(MELTANO_VENV)})


def lint() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(BIN / "actionlint", *sorted((ROOT / ".github" / "workflows").glob("*.yml")))


# The tests `quick` leaves out (markers registered in pyproject.toml): the end-to-end ones.
QUICK_LANE = "not postgres and not meltano and not target"
# Both lanes end with the slowest tests, to show where the suite's time goes.
DURATIONS = "--durations=15"
# Both lanes run on two workers (pytest-xdist), a test file each at a time: the Meltano and
# target tests wait on subprocesses and PostgreSQL, so the other worker's tests fill the gaps.
# Two, not one per core: the counts and timings in the README and docs/development.md are for
# this two-core machine.
WORKERS = ("-n", "2", "--dist", "loadfile")


def pytest(args: list[str]) -> None:
    run(BIN / "pytest", *args)


def locked_version(package: str) -> str:
    """The version uv.lock pins for ``package``."""
    found = re.search(rf'^name = "{re.escape(package)}"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text(), re.M)
    return found[1] if found else "?"


def canary(args: list[str]) -> None:
    """Run the suite against the newest singer-sdk release, to see SDK breakage before upgrading.

    The tap leans on SDK internals (see tests/test_sdk_hooks.py), so a new release can
    break it silently. A throwaway virtualenv gets the project with singer-sdk overridden to
    the newest release (whatever the project's pin says), pytest and jsonschema; .venv and
    the lock are not touched. Ends with one line naming the SDK version and the result.
    """
    locked = locked_version("singer-sdk")
    with tempfile.TemporaryDirectory(prefix="tap-zendesk-canary-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        python = env_dir / BIN.name / "python"
        index = subprocess.run(
            [str(python), "-m", "pip", "--disable-pip-version-check", "index", "versions", "singer-sdk"],
            capture_output=True,
            text=True,
            check=False,
        )
        newest = re.search(r"^singer-sdk \(([^)]+)\)", index.stdout, re.M)
        if newest is None:
            sys.exit(f"canary: could not learn the newest singer-sdk from PyPI:\n{index.stdout}{index.stderr}")
        version = newest[1]
        same = " (the locked version)" if version == locked else f" (locked: {locked})"
        print(f"canary: newest singer-sdk on PyPI is {version}{same}", flush=True)
        if os.environ.get("CANARY_SDK_VERSION"):  # another release, e.g. to try the canary itself
            version = os.environ["CANARY_SDK_VERSION"]
            print(f"canary: testing singer-sdk {version} instead (CANARY_SDK_VERSION)", flush=True)
        overrides = Path(tmp) / "overrides.txt"
        overrides.write_text(f"singer-sdk[msgspec]=={version}\n")
        # uv's --override replaces the project's singer-sdk pin (~=) with the newest release.
        run(
            BIN / "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--override",
            overrides,
            ".[postgres]",
            "pytest",
            "jsonschema",
            f"uv=={UV_VERSION}",  # docs/running.md's tests install target-jsonl with the uv beside python
        )
        installed = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('singer-sdk'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"+ {python} -m pytest -rf {' '.join(args)}", flush=True)
        # Run from the checkout, so that the tests and the tap's subprocesses import this
        # worktree's code, with the canary's packages.
        proc = subprocess.Popen(
            [str(python), "-m", "pytest", "-rf", "-p", "no:cacheprovider", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        counts = ""
        for line in proc.stdout:
            print(line, end="", flush=True)
            if re.search(r"\d+ (passed|failed|errors?|skipped)", line):
                counts = line.strip().strip("= ")
        code = proc.wait()
    verdict = "PASSED" if code == 0 else "FAILED"
    result = counts or f"pytest exited with code {code} before running the tests (see above)"
    print(f"canary: singer-sdk {installed} (locked {locked}): {verdict}: {result}", flush=True)
    sys.exit(code)


def meltano(*args: str, env: dict[str, str], capture: bool = False) -> str:
    print("+ meltano", " ".join(args), flush=True)
    out = subprocess.PIPE if capture else None
    proc = subprocess.run([str(MELTANO), *args], cwd=ROOT, env=env, stdout=out, text=True, check=False)
    if proc.returncode:
        sys.exit(proc.returncode)
    return proc.stdout or ""


def demo_env() -> dict[str, str]:
    """The environment of the demo's Meltano runs: the simulator, whatever the shell or .env says."""
    from zendesk_simulator import API_TOKEN, EMAIL  # noqa: PLC0415 - the simulator's fake credentials

    mine = ("TAP_ZENDESK_TICKET_EVENTS_", "TARGET_JSONL_", "MELTANO_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(mine)}
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_ENVIRONMENT="demo",
        TAP_ZENDESK_TICKET_EVENTS_EMAIL=EMAIL,
        TAP_ZENDESK_TICKET_EVENTS_API_TOKEN=API_TOKEN,
    )
    return env


def start_simulator(events: int) -> tuple[subprocess.Popen[bytes], str]:
    """Serve ``events`` realistic events on a free loopback port; wait until it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [BIN / "python", "-m", "zendesk_simulator", "--events", str(events), "--port", str(port)]
    print("+", " ".join(str(a) for a in args), flush=True)
    proc = subprocess.Popen([str(a) for a in args], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
        else:
            return proc, f"http://127.0.0.1:{port}"
    proc.kill()
    sys.exit("the Zendesk simulator did not start")


def demo() -> None:
    """Run the main job on the simulator into output/demo/, from scratch each time."""
    # --env-file: a .env made for a real account must not steer the demo.
    no_dotenv = f"--env-file={os.devnull}"
    env = demo_env()
    meltano(no_dotenv, "install", "tap-zendesk-ticket-events", "target-jsonl", env=env)
    simulator, url = start_simulator(DEMO_EVENTS)
    env["TAP_ZENDESK_TICKET_EVENTS_API_URL"] = url
    try:
        meltano(no_dotenv, "--log-level=warning", "state", "clear", "--force", DEMO_STATE_ID, env=env)
        DEMO_JSONL.unlink(missing_ok=True)
        meltano(no_dotenv, "run", "tap-zendesk-ticket-events", "target-jsonl", env=env)
        state = meltano(no_dotenv, "--log-level=warning", "state", "get", DEMO_STATE_ID, env=env, capture=True)
    finally:
        simulator.terminate()
        simulator.wait()
    lines = DEMO_JSONL.read_text(encoding="utf-8").splitlines() if DEMO_JSONL.exists() else []
    ids = {json.loads(line)["id"] for line in lines if line.strip()}
    where = DEMO_JSONL.relative_to(ROOT)
    print(
        f"""
{len(lines)} ticket events ({len(ids)} distinct ids) landed in {where}
  one of them:    head -n 1 {where}
  Meltano state:  {state.strip()}
  see it again:   .venv-meltano/bin/meltano --environment=demo state get {DEMO_STATE_ID}
  next steps:     docs/meltano.md (a real Zendesk account, PostgreSQL), docs/production.md (schedules)"""
    )
    if not ids:
        sys.exit("no event landed: see the Meltano output above")


# --- `pythons`: the quick lane under every Python the classifiers name besides the host's ----
# This machine (Debian 12) has Python 3.11 only; Debian's own packages give 3.13 (Debian 13) and
# 3.14 (Debian unstable). Each lives in a Debian root made by debootstrap, built once and kept
# outside the clone, so that later runs, fresh clones and other worktrees reuse it.
PYTHONS_CACHE = Path(os.environ.get("PYTHONS_CACHE", "/var/cache/tap-zendesk-ticket-events/pythons"))
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_SUITES = {"3.13": "trixie", "3.14": "sid"}  # each Python, and the Debian suite that packages it
# The host's CA bundle: traffic may go through a proxy whose CA only the host trusts.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
ROOT_CA = "/etc/ssl/host-ca.crt"
# What stays in the root's copy of the clone between runs: the virtualenvs uv keeps in sync.
ROOT_KEEPS = {".venv", ".venv-meltano", ".venv-targets"}


def elapsed(start: float) -> str:
    seconds = round(time.monotonic() - start)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (from /proc/mounts)."""
    here = str(path.resolve())
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    below = here.rstrip("/") + "/"
    return sorted({m for m in points if m == here or m.startswith(below)}, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    for point in mounts_under(path):
        if subprocess.call(["umount", point]) != 0:
            subprocess.call(["umount", "--lazy", point])


def remove_root(path: Path) -> None:
    """Delete a root, never through a mount: a /dev bound in it is the host's own /dev."""
    unmount_all(path)
    if mounts_under(path):
        sys.exit(f"pythons: {path} still has mounts ({', '.join(mounts_under(path))}); unmount them first")
    shutil.rmtree(path, ignore_errors=True)


def debian_root(version: str) -> tuple[Path, str]:
    """The Debian root holding ``python<version>``: reused when built, else built from nothing."""
    suite = DEBIAN_SUITES[version]
    root = PYTHONS_CACHE / f"debian-{suite}-python{version}"
    if (root / ".built").exists():
        return root, "cached"
    start = time.monotonic()
    if shutil.which("debootstrap") is None:
        run("apt-get", "install", "--yes", "--quiet", "debootstrap")
    partial = root.with_name(root.name + ".partial")
    remove_root(partial)  # a build cut short
    remove_root(root)
    partial.parent.mkdir(parents=True, exist_ok=True)
    packages = f"python{version},python{version}-venv,ca-certificates"
    run("debootstrap", "--variant=minbase", f"--include={packages}", suite, partial, DEBIAN_MIRROR)
    # Debian unstable's Release file is often past its Valid-Until on mirrors: apt in the root
    # (to add a package later) must not refuse it.
    (partial / "etc" / "apt" / "apt.conf.d" / "99no-check-valid-until").write_text(
        'Acquire::Check-Valid-Until "false";\n'
    )
    (partial / ".built").write_text(f"debootstrap {suite} from {DEBIAN_MIRROR}, python{version}\n")
    partial.rename(root)
    return root, f"built in {elapsed(start)}"


def copy_clone(target: Path) -> None:
    """Copy the clone's files as git sees them (tracked, and new ones not ignored) to ``target``.

    Only the virtualenvs of an earlier run stay there: uv brings them in line with the lock.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target.mkdir(exist_ok=True)
    for entry in target.iterdir():
        if entry.name not in ROOT_KEEPS:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the worktree is still listed until committed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def python_lane(version: str, args: list[str]) -> tuple[bool, str]:
    """The quick lane under ``python<version>`` in its Debian root, on a copy of this clone."""
    root, how = debian_root(version)
    start = time.monotonic()
    shutil.copy(HOST_CA, root / ROOT_CA.lstrip("/"))
    copy_clone(root / "src")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": ROOT_CA,  # uv
        "PIP_CERT": ROOT_CA,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # Under CI=true a test that cannot run fails instead of skipping, as on the host.
        **({"CI": os.environ["CI"]} if "CI" in os.environ else {}),
    }
    # By its full path: the clean environment's PATH is the root's, without /usr/sbin.
    command = [shutil.which("chroot") or "/usr/sbin/chroot", str(root), "/bin/sh", "-c", 'cd /src && exec "$@"', "sh"]
    command += [f"python{version}", "tasks.py", "quick", *args]
    print(f"pythons: {version}: Debian {DEBIAN_SUITES[version]} root {root} ({how})", flush=True)
    try:
        run("mount", "-t", "proc", "proc", root / "proc")
        run("mount", "--bind", "/dev", root / "dev")  # /dev/null, /dev/urandom, /dev/shm
        print("+", " ".join(command), flush=True)
        code = subprocess.call(command, env=env)
    finally:
        unmount_all(root)
    return code == 0, f"Python {version} (Debian {DEBIAN_SUITES[version]}, root {how}): quick lane " + (
        f"passed in {elapsed(start)}" if code == 0 else f"FAILED (exit {code}) after {elapsed(start)}"
    )


def pythons(args: list[str]) -> None:
    """The quick lane under each Python of DEBIAN_SUITES (or those named), one after the other."""
    if sys.platform != "linux" or os.geteuid() != 0:
        sys.exit("pythons: building and entering Debian roots needs Linux and root (debootstrap, chroot, mount)")
    versions = [a for a in args if a in DEBIAN_SUITES] or list(DEBIAN_SUITES)
    rest = [a for a in args if a not in DEBIAN_SUITES]
    results = [python_lane(version, rest) for version in versions]
    for _, line in results:
        print(f"pythons: {line}", flush=True)
    if not all(ok for ok, _ in results):
        sys.exit(1)


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file must run, and say so, on older Pythons
        sys.exit("tap-zendesk-ticket-events needs Python >= 3.11")
    task, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if task in {"help", "-h", "--help"}:
        print(__doc__)
        return
    if task == "pythons":  # runs in Debian roots of its own: the host's .venv is not needed
        pythons(args)
        return
    setup()
    if task == "demo":
        demo()
    elif task == "test":
        lint()
        pytest([*WORKERS, DURATIONS, *args])
    elif task == "quick":
        lint()
        pytest([*WORKERS, "-m", QUICK_LANE, DURATIONS, *args])
    elif task == "pytest":
        pytest(args)
    elif task == "lint":
        lint()
    elif task == "canary":
        canary(args)
    elif task == "bench":
        run(BIN / "python", ROOT / "benchmarks" / "run.py", *args)
    elif task == "format":
        run(BIN / "ruff", "format", ".")
        run(BIN / "ruff", "check", "--fix", ".")
    elif task != "setup":
        sys.exit(f"unknown task {task!r}; see: python3 tasks.py help")


if __name__ == "__main__":
    main()
