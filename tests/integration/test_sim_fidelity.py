"""The virtual board does what a board does where it used to do something else: a traceback whose
name is not UTF-8, the reset button without power, the power switch with the cable pulled, and
Ctrl-C after ``micropython.kbd_intr(-1)``.

mpremote's SerialTransport is the client (an outside implementation of the raw REPL).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from mpremote.transport_serial import SerialTransport

from hil.errors import SimError
from hil.sim import SimBoard


@contextlib.contextmanager
def raw_session(board: SimBoard) -> Iterator[SerialTransport]:
    transport = SerialTransport(board.port, baudrate=115200)
    try:
        transport.enter_raw_repl(soft_reset=False)
        yield transport
    finally:
        transport.close()


def test_name_error_with_a_non_utf8_name_is_a_traceback(virtual_board: SimBoard) -> None:
    """It crashed the board's firmware, and the client waited out its deadline."""
    pid = virtual_board.control.status()["pid"]
    with raw_session(virtual_board) as t:
        out, err = t.exec_raw(b"x\xff\xfe", timeout=10)
        assert out == b""
        assert b"NameError: name 'x\xff\xfe' isn't defined" in err
        assert t.exec_raw("print(6 * 7)", timeout=10) == (b"42\r\n", b"")
    status = virtual_board.control.status()
    assert status["pid"] == pid and status["crashes"] == 0


def test_pasted_non_utf8_code_runs_in_the_friendly_repl(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=10)
        t.serial.write(b"\x05")
        t.read_until(1, b"=== ", timeout=10)
        t.serial.write(b"y\xff = 5\rprint(y\xff * 2)\r\x04")
        assert b"10\r\n>>> " in t.read_until(1, b"10\r\n>>> ", timeout=10)
    assert virtual_board.control.status()["crashes"] == 0


def test_reset_button_without_power_does_nothing(virtual_board: SimBoard, wait_until) -> None:
    control = virtual_board.control
    control.power(False)
    before = control.status()
    control.reset()
    after = control.status()
    assert (after["state"], after["pid"], after["plugged"]) == ("off", None, False)
    assert after["boots"] == before["boots"]
    control.power(True)
    assert control.wait_ready(30)["boots"] == before["boots"] + 1


def test_power_switch_does_not_plug_a_pulled_cable_in(virtual_board: SimBoard) -> None:
    control = virtual_board.control
    port = Path(virtual_board.port)
    control.unplug()
    control.power(True)
    status = control.status()
    assert (status["state"], status["plugged"], status["pid"]) == ("unplugged", False, None)
    assert not port.exists()
    control.replug()
    control.wait_ready(30)
    assert Path(control.port()).exists()


def test_cable_back_in_with_the_switch_off_stays_off(virtual_board: SimBoard) -> None:
    control = virtual_board.control
    control.power(False)
    control.unplug()
    control.replug()
    status = control.status()
    assert (status["state"], status["pid"], status["plugged"]) == ("off", None, False)
    control.power(True)
    control.wait_ready(30)


def test_ctrl_c_after_kbd_intr_off_is_input_and_the_board_lives(
    virtual_board: SimBoard,
) -> None:
    """A board takes the byte as input; the unix port was killed by the SIGINT it got."""
    pid = virtual_board.control.status()["pid"]
    code = (
        "import micropython, sys\n"
        "micropython.kbd_intr(-1)\n"
        "print('waiting')\n"
        "c = sys.stdin.buffer.read(1)\n"
        "print('got', c)\n"
    )
    with raw_session(virtual_board) as t:
        t.exec_raw_no_follow(code)
        t.read_until(1, b"waiting\r\n", timeout=10)
        t.serial.write(b"\x03")
        out, err = t.follow(10)
        assert (out, err) == (b"got b'\\x03'\r\n", b"")
        # the next execution can be interrupted again, as pyexec re-arms Ctrl-C for each one
        t.exec_raw_no_follow("print('looping')\nwhile True:\n    pass\n")
        t.read_until(1, b"looping\r\n", timeout=10)
        t.serial.write(b"\x03")
        out, err = t.follow(10)
        assert b"KeyboardInterrupt" in err
    status = virtual_board.control.status()
    assert status["pid"] == pid and status["crashes"] == 0


def test_microbit_power_switch_does_not_plug_a_pulled_cable_in(microbit_board) -> None:
    control = microbit_board.control
    control.unplug()
    control.power(True)
    status = control.status()
    assert (status["state"], status["plugged"], status["pid"]) == ("unplugged", False, None)
    control.power(False)
    control.replug()
    assert control.status()["state"] == "off"  # the switch is off: the cable alone starts nothing
    control.power(True)
    control.wait_ready(30)


def test_wait_ready_fails_at_once_on_a_crashed_board(virtual_board: SimBoard, wait_until) -> None:
    """The host gives a board up after repeated crashes; waiting for it to boot is then futile."""
    control = virtual_board.control
    for _ in range(3):
        pid = wait_until(lambda: control.status()["pid"], 30, "an interpreter")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda p=pid: control.status()["pid"] != p, 30, "the host to notice")
    wait_until(lambda: control.status()["state"] == "crashed", 30, "the board to be given up")
    with pytest.raises(SimError, match="crashed while booting"):
        control.wait_ready(60)  # at once, not "not ready within 60s" at the end
    control.reset()  # the reset button revives it
    control.wait_ready(30)
