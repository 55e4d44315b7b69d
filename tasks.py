#!/usr/bin/env python3
"""Project tasks that need nothing but Python >= 3.10: ``python3 tasks.py <task> [args]``.

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
  canary    the test suite against the newest singer-sdk release on PyPI, in a throwaway
            virtualenv (.venv stays on the lock); extra args go to pytest. Not part of CI.
            CANARY_SDK_VERSION=x.y.z tests that release instead.
"""

from __future__ import annotations

import json
import os
import re
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


def main() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file must run, and say so, on older Pythons
        sys.exit("tap-zendesk-ticket-events needs Python >= 3.10")
    task, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if task in {"help", "-h", "--help"}:
        print(__doc__)
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
