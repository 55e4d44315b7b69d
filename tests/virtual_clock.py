"""The tests' one fake clock: time passes only when someone sleeps, or when the test moves it.

Installed in the modules that read time (the tap's throttle or auth, the simulator), it
makes a run's timing a matter of counting: a sleep of 60 s takes no time and moves the clock
60 s, a page the simulator answers with ``latency`` moves it ``latency`` seconds, and nothing
else does. How loaded the machine is cannot change what a test sees. Given to a class that
takes a clock function (``Throttle``, ``Progress``), it is that function, and a test moves
it by setting ``now``.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import pytest


class VirtualClock:
    """``time``, ``monotonic`` and ``sleep`` on one virtual timeline: ``monotonic`` starts at
    ``now``, ``time`` at the real now."""

    def __init__(self, now: float = 0.0) -> None:
        self._epoch = time.time()
        self._now = now
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        """Every sleep asked for, in order, whoever asked."""

    @property
    def now(self) -> float:
        """The monotonic time; a test sets it to make time pass (or stand)."""
        with self._lock:
            return self._now

    @now.setter
    def now(self, value: float) -> None:
        with self._lock:
            self._now = value

    def __call__(self) -> float:
        return self.monotonic()

    def time(self) -> float:
        with self._lock:
            return self._epoch + self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    def module(self) -> Any:
        """A stand-in for the ``time`` module: this clock's three functions, the rest real."""
        return _TimeModule(self)

    def install(self, monkeypatch: pytest.MonkeyPatch, *modules: types.ModuleType) -> None:
        """Make each module's ``time`` this clock (for the test's duration)."""
        for module in modules:
            monkeypatch.setattr(module, "time", self.module())


class _TimeModule:
    def __init__(self, clock: VirtualClock) -> None:
        self.time = clock.time
        self.monotonic = clock.monotonic
        self.sleep = clock.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
