"""The virtual board's wire on its own: a UART's timing on a fake clock, and the relay that
applies faults to bytes in flight (real pipes where a file descriptor is needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hil.sim.faults import FaultInjector
from hil.sim.wire import Relay, Wire


class FakeClock:
    """A clock the test moves by hand (``Wire`` and ``FaultInjector`` take one)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_without_a_baud_rate_bytes_pass_at_once(clock: FakeClock) -> None:
    wire = Wire(None, clock)
    wire.put(b"hello")
    assert wire.ready(clock.now) == 5
    assert wire.take(5) == b"hello"
    assert len(wire) == 0
    assert wire.wait(clock.now) == 0.0


def test_at_9600_baud_a_byte_takes_ten_bit_times(clock: FakeClock) -> None:
    wire = Wire(9600, clock)  # 960 bytes per second
    wire.put(b"x" * 96)  # 0.1 s of line time
    assert wire.ready(clock.now) == 0
    assert wire.ready(clock.now + 0.05) == 48
    assert wire.ready(clock.now + 0.1) == 96
    assert wire.wait(clock.now) == pytest.approx(1 / 960)


def test_an_idle_line_saves_up_no_credit(clock: FakeClock) -> None:
    wire = Wire(9600, clock)
    clock.now += 10.0  # a long silence
    wire.put(b"y" * 96)
    assert wire.ready(clock.now) == 0  # the burst still takes its own line time
    assert wire.ready(clock.now + 0.1) == 96


def test_bytes_queue_behind_the_ones_still_on_the_line(clock: FakeClock) -> None:
    wire = Wire(9600, clock)
    wire.put(b"a" * 96)
    wire.put(b"b" * 96)  # starts when the first burst has left, 0.1 s from now
    assert wire.ready(clock.now + 0.1) == 96
    assert wire.ready(clock.now + 0.15) == 96 + 48
    assert wire.take(100) == b"a" * 96 + b"b" * 4
    assert wire.ready(clock.now + 0.2) == 92


def test_taking_part_of_a_segment_keeps_the_rest_on_time(clock: FakeClock) -> None:
    wire = Wire(9600, clock)
    wire.put(b"z" * 96)
    clock.now += 0.05
    assert wire.take(wire.ready(clock.now)) == b"z" * 48
    assert wire.ready(clock.now) == 0
    assert wire.ready(clock.now + 0.05) == 48


def test_changing_the_baud_rate_restarts_what_is_queued(clock: FakeClock) -> None:
    wire = Wire(None, clock)
    wire.put(b"q" * 960)
    wire.set_baud(9600)
    assert wire.ready(clock.now) == 0
    assert wire.ready(clock.now + 1.0) == 960
    wire.set_baud(None)
    assert wire.ready(clock.now) == 960


def relay(clock: FakeClock, baud: int | None = None) -> Relay:
    return Relay(baud, FaultInjector(clock=clock), clock)


class Sink:
    """A port or a board that takes at most ``room`` bytes per write."""

    def __init__(self, room: int = 1 << 20) -> None:
        self.data = bytearray()
        self.room = room

    def write(self, data: bytes) -> int:
        taken = data[: self.room]
        self.data += taken
        return len(taken)

    def deliver(self, data: bytes) -> None:
        self.data += data


def test_relay_moves_both_directions(clock: FakeClock) -> None:
    link = relay(clock)
    board, port = Sink(), Sink()
    link.from_port(b"\r\x01")
    link.from_board(b">>> ")
    assert link.pump(clock.now, board.deliver, port.write) is None
    assert (bytes(board.data), bytes(port.data)) == (b"\r\x01", b">>> ")


def test_relay_keeps_bytes_a_slow_reader_did_not_take(clock: FakeClock) -> None:
    link = relay(clock)
    port = Sink(room=3)
    link.from_board(b"abcdef")
    wait = link.pump(clock.now, None, port.write)
    assert port.data == b"abc" and wait is not None and wait > 0
    link.pump(clock.now, None, port.write)
    assert port.data == b"abcdef"


def test_relay_at_a_baud_rate_says_when_to_come_back(clock: FakeClock) -> None:
    link = relay(clock, baud=9600)
    port = Sink()
    link.from_board(b"k" * 96)
    wait = link.pump(clock.now, None, port.write)
    assert port.data == b"" and wait == pytest.approx(1 / 960)
    clock.now += 0.05
    link.pump(clock.now, None, port.write)
    assert len(port.data) == 48


def test_stall_holds_both_directions_until_it_ends(clock: FakeClock) -> None:
    faults = FaultInjector(clock=clock)
    link = Relay(None, faults, clock)
    board, port = Sink(), Sink()
    faults.inject("stall", {"seconds": 2.0})
    link.from_port(b"in")
    link.from_board(b"out")
    assert link.pump(clock.now, board.deliver, port.write) == pytest.approx(2.0)
    assert board.data == port.data == b""
    clock.now += 2.0
    link.pump(clock.now, board.deliver, port.write)
    assert (bytes(board.data), bytes(port.data)) == (b"in", b"out")


def test_drop_loses_the_next_bytes_from_the_board_only(clock: FakeClock) -> None:
    faults = FaultInjector(clock=clock)
    link = Relay(None, faults, clock)
    faults.inject("drop", {"count": 5})
    link.from_board(b"abc")
    link.from_board(b"defgh")
    link.from_port(b"12345678")
    assert link.tx.take(len(link.tx)) == b"fgh"
    assert link.rx.take(len(link.rx)) == b"12345678"
    assert link.last_output == b"abcdefgh"  # what the board said, for crash reports


def test_a_hung_board_says_nothing(clock: FakeClock) -> None:
    faults = FaultInjector(clock=clock)
    link = Relay(None, faults, clock)
    faults.inject("hang", {})
    link.from_board(b"late words")
    assert len(link.tx) == 0 and link.last_output == b""


def test_output_of_an_unplugged_board_is_lost(clock: FakeClock) -> None:
    link = relay(clock)
    link.from_board(b"nobody listens", plugged=False)
    assert len(link.tx) == 0


def test_noise_goes_towards_the_host(clock: FakeClock) -> None:
    faults = FaultInjector(clock=clock)
    link = Relay(None, faults, clock)
    link.inject_noise(faults.inject("noise", {"count": 8, "seed": 1}))
    assert len(link.tx) == 8 and len(link.rx) == 0


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    os.close(r)
    os.close(w)


def test_drain_board_relays_everything_written_so_far(
    clock: FakeClock, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    link = relay(clock, baud=300)  # a slow line: draining must not wait for it
    chunk = bytes(range(256)) * 64
    for _ in range(3):
        os.write(w, chunk)
    link.drain_board(r)
    assert link.tx.queue == chunk * 3
    port = Sink()
    link.flush_to_port(port.write)
    assert port.data == chunk * 3 and len(link.tx) == 0


def test_drain_board_of_a_quiet_board_reads_nothing(
    clock: FakeClock, pipe: tuple[int, int]
) -> None:
    link = relay(clock)
    link.drain_board(pipe[0])
    assert len(link.tx) == 0


def test_backpressure_stops_reading_a_board_whose_port_is_far_behind(clock: FakeClock) -> None:
    link = relay(clock)
    assert link.wants_board_output()
    link.from_board(b"x" * 300_000)
    assert not link.wants_board_output()
