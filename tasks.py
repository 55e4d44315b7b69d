#!/usr/bin/env python3
"""Project tasks that need nothing but Python >= 3.10: ``python3 tasks.py <task> [args]``.

It plays the part of a Makefile on machines that have no ``make``. Every task first makes
sure ``.venv`` holds exactly what ``uv.lock`` pins (uv itself is installed into ``.venv``
from PyPI), so a fresh clone needs no other step.

Tasks:
  test      lint, type-check, then the whole test suite (what CI runs); extra args go to pytest
  pytest    only the test suite; extra args go to pytest
  lint      ruff check, ruff format --check, mypy --strict
  format    ruff format and ruff check --fix
  setup     only create or refresh .venv
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
UV_VERSION = "0.13.8"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    code = subprocess.call([str(a) for a in args], cwd=ROOT, env={**os.environ, **(env or {})})
    if code:
        sys.exit(code)


def setup() -> None:
    """Create .venv with the running Python and sync it to uv.lock."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check"]
        if subprocess.call([str(a) for a in [*pip, "--version"]], stdout=subprocess.DEVNULL) != 0:
            run(BIN / "python", "-m", "ensurepip", "--default-pip")
        run(*pip, "install", "--quiet", f"uv=={UV_VERSION}")
    uv_env = {"UV_PROJECT_ENVIRONMENT": str(VENV)}
    run(BIN / "uv", "sync", "--locked", "--quiet", "--python", BIN / "python", env=uv_env)


def lint() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")


def pytest(args: list[str]) -> None:
    run(BIN / "pytest", *args)


def main() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file must run, and say so, on older Pythons
        sys.exit("tap-zendesk-ticket-events needs Python >= 3.10")
    task, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if task in {"help", "-h", "--help"}:
        print(__doc__)
        return
    setup()
    if task == "test":
        lint()
        pytest(args)
    elif task == "pytest":
        pytest(args)
    elif task == "lint":
        lint()
    elif task == "format":
        run(BIN / "ruff", "format", ".")
        run(BIN / "ruff", "check", "--fix", ".")
    elif task != "setup":
        sys.exit(f"unknown task {task!r}; see: python3 tasks.py help")


if __name__ == "__main__":
    main()
