"""The byte link: deadlines, markers split across reads, errors carrying the last bytes."""

from __future__ import annotations

import pytest
import serial
from replay_port import ScriptedPort

from hil.deadline import Deadline
from hil.errors import BoardTimeout, ConfigError, LinkError
from hil.transcript import Direction
from hil.transport import Transport, open_serial


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_and_caps() -> None:
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    assert deadline.remaining == 2.0 and not deadline.expired
    clock.now += 1.5
    assert deadline.remaining == pytest.approx(0.5)
    assert deadline.cap(10).remaining == pytest.approx(0.5)
    assert deadline.cap(0.25).remaining == pytest.approx(0.25)
    clock.now += 1
    assert deadline.expired and deadline.remaining == 0.0
    with pytest.raises(ValueError, match="finite"):
        Deadline(float("inf"))


def link(stream: bytes, cuts=()) -> tuple[Transport, ScriptedPort]:
    port = ScriptedPort([("rx", stream)], cuts)
    transport = Transport(lambda: port, name="fake")
    transport.connect()
    return transport, port


STREAM = b"noise>>> more\x04OK\r\n>>> tail"


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_read_until_at_every_split(cut: int) -> None:
    transport, _ = link(STREAM, [cut])
    assert transport.read_until(b"\x04", deadline=1) == b"noise>>> more\x04"
    # of several markers, the one that occurs first in the stream wins
    assert transport.read_until((b">>> ", b"OK"), deadline=1) == b"OK"
    assert transport.read_until(b">>> ", deadline=1) == b"\r\n>>> "
    assert transport.read_exact(4, deadline=1) == b"tail"


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_streaming_never_hands_over_the_marker(cut: int) -> None:
    transport, _ = link(STREAM, [cut])
    chunks: list[bytes] = []
    assert transport.read_until(b"\r\n>>> ", deadline=1, on_data=chunks.append) == b"\r\n>>> "
    assert b"".join(chunks) == b"noise>>> more\x04OK"


def test_timeout_carries_the_last_bytes() -> None:
    transport, _ = link(b"ets Jul 29 2019 12:21:46\r\nrst:0x1")
    with pytest.raises(BoardTimeout) as info:
        transport.read_until(b"raw REPL", deadline=0.05)
    assert info.value.tail == b"ets Jul 29 2019 12:21:46\r\nrst:0x1"
    assert "within 0.05 s" in str(info.value) and "rst:0x1" in str(info.value)


def test_inter_byte_timeout_is_reported_as_silence() -> None:
    transport, _ = link(b"partial")
    with pytest.raises(BoardTimeout, match=r"silent for 0\.05 s"):
        transport.read_until(b"\x04", deadline=5, inter_byte_timeout=0.05)


class BrokenPort(ScriptedPort):
    def read(self, size: int = 1) -> bytes:
        if not self.chunks:
            raise serial.SerialException("read failed: [Errno 5] Input/output error")
        return super().read(size)


def test_vanished_port_is_a_link_error_and_stays_closed() -> None:
    port = BrokenPort([("rx", b"last words")])
    transport = Transport(lambda: port, name="fake")
    transport.connect()
    with pytest.raises(LinkError, match="Input/output error") as info:
        transport.read_until(b"\x04", deadline=5)
    assert info.value.tail == b"last words"
    with pytest.raises(LinkError, match="closed"):
        transport.write(b"x")


class StuckPort(ScriptedPort):
    def write(self, data: bytes) -> int:
        raise serial.SerialTimeoutException("Write timeout")


def test_blocked_write_is_a_board_timeout() -> None:
    transport = Transport(lambda: StuckPort([]), name="fake")
    transport.connect()
    with pytest.raises(BoardTimeout, match="stopped reading"):
        transport.write(b"\x03")


def test_drain_returns_what_arrived_and_the_tap_records_both_directions() -> None:
    port = ScriptedPort([("tx", b"\r\x03"), ("rx", b"chatter\r\n")])
    transport = Transport(lambda: port, name="fake")
    transport.connect()
    transport.write(b"\r\x03")
    assert transport.drain(quiet=0.01, deadline=1) == b"chatter\r\n"
    assert transport.tap.payload(Direction.TX) == b"\r\x03"
    assert transport.tap.payload(Direction.RX) == b"chatter\r\n"


def test_open_serial_errors_name_the_port(tmp_path) -> None:
    with pytest.raises(ConfigError, match="nosuchscheme"):
        open_serial("nosuchscheme://x")
    missing = str(tmp_path / "ttyNONE")
    with pytest.raises(LinkError) as info:
        open_serial(missing)
    assert info.value.where == missing


def test_connect_retries_until_the_port_appears() -> None:
    attempts = []

    def opener():
        attempts.append(1)
        if len(attempts) < 3:
            raise LinkError("no such device")
        return ScriptedPort([])

    transport = Transport(opener, name="later")
    transport.connect(wait=5)
    assert transport.is_open and len(attempts) == 3
