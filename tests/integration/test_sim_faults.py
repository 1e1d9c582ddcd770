"""Each injected fault, seen where it matters: on the wire."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import serial
from mpremote.transport_serial import SerialTransport

from hil.sim import SimBoard

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"


@pytest.fixture
def link(virtual_board: SimBoard) -> Iterator[serial.Serial]:
    port = serial.Serial(virtual_board.port, timeout=0.05, exclusive=True)
    port.reset_input_buffer()
    yield port
    port.close()


def read_for(port: serial.Serial, seconds: float) -> bytes:
    """Everything the board sends during ``seconds`` (to show that nothing came)."""
    data = bytearray()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data += port.read(4096)
    return bytes(data)


def read_until(port: serial.Serial, marker: bytes, timeout: float = 10) -> bytes:
    data = bytearray()
    end = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > end:
            pytest.fail(f"no {marker!r} within {timeout}s; got {bytes(data)!r}")
        data += port.read(4096)
    return bytes(data)


def test_stall_holds_bytes_then_delivers_them(virtual_board: SimBoard, link) -> None:
    virtual_board.control.fault("stall", seconds=1.0)
    link.write(b"\r\x01")
    assert read_for(link, 0.4) == b""
    assert read_until(link, RAW_BANNER).endswith(RAW_BANNER)


def test_hang_until_reset(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1, usb="uart")  # the port stays across the reset
    with serial.Serial(board.port, timeout=0.05) as port:
        board.control.fault("hang")
        port.write(b"\r\x03\x03\x01")
        assert read_for(port, 0.5) == b""  # Ctrl-C does not help a hung board
        board.control.reset()
        banner = read_until(port, b">>> ")
        assert b'Type "help()" for more information.' in banner
        port.write(b"\x01")
        read_until(port, RAW_BANNER)


def test_noise_arrives_on_the_wire_and_raw_repl_still_works(virtual_board: SimBoard, link) -> None:
    virtual_board.control.fault("noise", count=48, seed=7)
    rng = random.Random(7)
    expected = bytes(rng.randrange(256) for _ in range(48))
    assert read_until(link, expected) == expected
    link.close()  # mpremote opens the port exclusively
    transport = SerialTransport(virtual_board.port)
    try:
        transport.enter_raw_repl(soft_reset=False)
        assert transport.exec("print('through the noise')") == b"through the noise\r\n"
    finally:
        transport.close()


def test_drop_loses_the_next_bytes_from_the_board(virtual_board: SimBoard, link) -> None:
    link.write(b"\r\x03")
    read_until(link, b">>> ")
    virtual_board.control.fault("drop", count=4)
    link.write(b"\x01")
    got = read_until(link, RAW_BANNER[2:])
    assert got == (b"\r\n" + RAW_BANNER)[4:]  # "\r\nraw REPL..." lost its first 4 bytes


def test_slow_boot_delays_the_prompt(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1, usb="uart")
    with serial.Serial(board.port, timeout=0.05) as port:
        board.control.fault("slow_boot", seconds=1.5)
        board.control.reset()
        assert b">>> " not in read_for(port, 0.5)
        assert board.control.status()["state"] == "booting"
        read_until(port, b">>> ")


def test_no_raw_paste_is_refused(virtual_board: SimBoard, link) -> None:
    link.write(b"\r\x03\x01")
    read_until(link, RAW_BANNER)
    virtual_board.control.fault("no_raw_paste")
    link.write(b"\x05A\x01")
    assert read_until(link, b">") == b"R\x00>"  # pyexec.c: refusal, then a fresh prompt


def test_old_firmware_without_raw_paste_restarts_the_raw_repl(virtual_board: SimBoard, link):
    link.write(b"\r\x03\x01")
    read_until(link, RAW_BANNER)
    virtual_board.control.fault("no_raw_paste", style="old")
    link.write(b"\x05A\x01")
    assert read_until(link, RAW_BANNER) == RAW_BANNER  # Ctrl-A just resets the raw REPL


def test_raw_paste_abort_mid_transfer(virtual_board: SimBoard, link) -> None:
    link.write(b"\r\x03\x01")
    read_until(link, RAW_BANNER)
    virtual_board.control.fault("raw_paste_abort", after=10)
    link.write(b"\x05A\x01")
    assert read_until(link, b"R\x01\x80\x00\x01") == b"R\x01\x80\x00\x01"
    link.write(b"print('this is more than ten bytes')")
    assert read_until(link, b"\x04") == b"\x04"  # the board ends the transfer early
    link.write(b"\x04")
    tail = read_until(link, b"\x04>")
    assert b"MemoryError" in tail


def test_baud_rate_throttles_the_link(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1, baud=9600)  # 960 bytes per second
    transport = SerialTransport(board.port)
    try:
        transport.enter_raw_repl(soft_reset=False)
        started = time.monotonic()
        out = transport.exec("print('x' * 1500)")
        elapsed = time.monotonic() - started
    finally:
        transport.close()
    assert out == b"x" * 1500 + b"\r\n"
    # 1500 bytes cannot cross a 960 B/s line in less than ~1.5 s (a lower bound only)
    assert elapsed > 1.2


def _answer_to(link: serial.Serial, code: bytes, fault: Callable[[], None] = lambda: None) -> bytes:
    """Raw REPL answer to ``code`` (the board's bytes as they reach the host), with ``fault``
    injected once the raw prompt is there."""
    link.write(b"\r\x03\x03\x01")
    read_until(link, RAW_BANNER)
    fault()
    link.write(code + b"\x04")
    return read_until(link, b"\x04>")


def test_corrupt_alters_bytes_in_flight_towards_the_host(virtual_board: SimBoard, link) -> None:
    code = b"print('x' * 400)"
    clean = _answer_to(link, code)
    inject = lambda: virtual_board.control.fault("corrupt", rate=0.05, count=3, seed=5)  # noqa: E731
    damaged = _answer_to(link, code, inject)
    assert len(damaged) == len(clean) and damaged != clean
    assert sum(a != b for a, b in zip(damaged, clean, strict=True)) <= 3
    assert virtual_board.control.status()["faults"]["corrupt"] == 0  # all three were used
    assert _answer_to(link, code) == clean


def test_corrupt_both_ways_alters_what_the_board_receives(virtual_board: SimBoard, link) -> None:
    virtual_board.control.fault("corrupt", rate=1.0, count=1, direction="both", seed=1)
    link.write(b"\r\x03\x03\x01")  # one of these bytes is altered on its way to the board
    read_for(link, 0.3)
    assert virtual_board.control.status()["faults"]["corrupt"] == 0


def test_drop_and_noise_with_a_rate_act_inside_the_output(virtual_board: SimBoard, link) -> None:
    code = b"print('y' * 600)"
    clean = _answer_to(link, code)
    control = virtual_board.control
    dropped = _answer_to(link, code, lambda: control.fault("drop", rate=0.01, count=2, seed=3))
    assert len(dropped) == len(clean) - 2 and dropped[:2] == clean[:2]  # not at the start
    noisy = _answer_to(link, code, lambda: control.fault("noise", rate=0.01, count=2, seed=4))
    assert len(noisy) == len(clean) + 2 and noisy != clean


def test_corrupt_from_the_command_line(virtual_board: SimBoard) -> None:
    state = str(virtual_board.directory.parent)

    def hil_sim_fault(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hil.cli", "sim", "fault", "--state-dir", state]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30)

    done = hil_sim_fault(virtual_board.name, "corrupt", "--rate", "0.5", "--count", "2")
    assert done.returncode == 0, done.stderr
    assert virtual_board.control.status()["faults"]["corrupt"] == 2
    bad = hil_sim_fault(virtual_board.name, "corrupt", "--rate", "1.5")
    assert bad.returncode != 0 and "probability" in bad.stderr, bad.stderr
