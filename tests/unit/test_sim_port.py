"""A virtual board's serial port on its own: a real pty pair behind a symlink that vanishes while
the board is unplugged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.deadline import wait_for
from hil.sim.port import Port


def read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 100)
    except BlockingIOError:
        return b""


@pytest.fixture
def port(tmp_path: Path) -> Iterator[Port]:
    port = Port(tmp_path)
    yield port
    port.unplug()


def test_plug_publishes_a_working_serial_device(port: Port, tmp_path: Path) -> None:
    assert not (tmp_path / "port").exists() and port.tty is None
    port.plug()
    assert os.path.realpath(tmp_path / "port") == port.tty
    fd = os.open(tmp_path / "port", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, b"\x01hello")
        assert wait_for(port.read, 5.0) == b"\x01hello"
        assert port.write(b"raw REPL\r\n>") == 11
        assert wait_for(lambda: read_some(fd), 5.0) == b"raw REPL\r\n>"
    finally:
        os.close(fd)


def test_unplug_removes_the_path_and_reads_give_nothing(port: Port, tmp_path: Path) -> None:
    port.plug()
    port.unplug()
    assert not os.path.lexists(tmp_path / "port")
    assert not port.plugged and port.read() == b"" and port.write(b"x") == 0
    port.unplug()  # twice is harmless


def test_replug_on_a_new_path(port: Port, tmp_path: Path) -> None:
    port.plug()
    port.unplug()
    port.plug(new_path=True)
    assert port.link == tmp_path / "port-1" and os.path.exists(tmp_path / "port-1")
    assert not os.path.lexists(tmp_path / "port")
