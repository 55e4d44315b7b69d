#!/usr/bin/env python3
"""Project tasks that need nothing but Python >= 3.10: ``python3 tasks.py <task> [args]``.

It plays the part of a Makefile on machines that have no ``make``. Every task first makes
sure ``.venv`` holds exactly what ``uv.lock`` pins (uv itself is installed into ``.venv``
from PyPI), and ``.venv-meltano`` the lock's ``meltano`` group, so a fresh clone needs no
other step.

Tasks:
  demo      run `meltano run tap-zendesk-ticket-events target-jsonl` on the bundled Zendesk
            simulator, then say how many events landed in output/demo/ and where to look
  test      lint, type-check, then the whole test suite (what CI runs); extra args go to pytest
  pytest    only the test suite; extra args go to pytest
  bench     the performance benchmark against the simulator (a few minutes); prints a table
  lint      ruff check, ruff format --check, mypy --strict
  format    ruff format and ruff check --fix
  setup     only create or refresh .venv and .venv-meltano
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
        pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check"]
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


def pytest(args: list[str]) -> None:
    run(BIN / "pytest", *args)


def meltano(*args: str, env: dict[str, str], capture: bool = False) -> str:
    print("+ meltano", " ".join(args), flush=True)
    out = subprocess.PIPE if capture else None
    proc = subprocess.run([str(MELTANO), *args], cwd=ROOT, env=env, stdout=out, text=True, check=False)
    if proc.returncode:
        sys.exit(proc.returncode)
    return proc.stdout or ""


def demo_env() -> dict[str, str]:
    """The environment of the demo's Meltano runs: the simulator, whatever the shell or .env says."""
    from tests.simulator import API_TOKEN, EMAIL  # noqa: PLC0415 - the simulator's fake credentials

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
    args = [BIN / "python", "-m", "tests.simulator", "--events", str(events), "--port", str(port)]
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
  next steps:     README.md, "With Meltano" (a real Zendesk account, PostgreSQL, schedules)"""
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
        pytest(args)
    elif task == "pytest":
        pytest(args)
    elif task == "lint":
        lint()
    elif task == "bench":
        run(BIN / "python", ROOT / "benchmarks" / "run.py", *args)
    elif task == "format":
        run(BIN / "ruff", "format", ".")
        run(BIN / "ruff", "check", "--fix", ".")
    elif task != "setup":
        sys.exit(f"unknown task {task!r}; see: python3 tasks.py help")


if __name__ == "__main__":
    main()
