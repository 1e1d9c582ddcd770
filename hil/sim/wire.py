"""The serial link of a virtual board: a UART's byte rate, and the relay that moves bytes between
the host's port and the board with the injected faults applied to them in flight.

Why apart from the host: every board kind (the unix port behind a pty, QEMU behind its chardev)
has the same wire between its UART and the host's serial port; only how bytes reach the board
differs, so the relay takes that as a function.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable

from hil.sim.faults import FaultInjector

Clock = Callable[[], float]

#: Stop reading the board while this much output waits for the port (a board blocks on a full
#: USB buffer; nothing is lost).
TX_HIGH_WATER = 256 * 1024
#: Most reads of a board's output in one drain (a board that keeps printing while it is being
#: reset must not hold the loop).
MAX_DRAIN_READS = 256
#: A millionth of a byte time: ``ready`` counts a byte due within it as arrived.
ROUNDING = 1e-6
#: How long to wait before writing again to a port whose reader is behind.
PORT_BUSY_RETRY = 0.005


class Wire:
    """One direction of the board's serial link: a queue whose bytes arrive no faster than a
    UART at ``baud`` would carry them (each byte 10 bit times after the one before it).

    Without a baud rate bytes pass at once. Bytes are handed over in batches (whatever has fully
    "arrived" when the loop looks), so the loop does not wake per byte, but no byte is early:
    an idle line does not save up credit for a later burst.
    """

    def __init__(self, baud: int | None, clock: Clock = time.monotonic) -> None:
        self.queue = bytearray()
        self._clock = clock
        self._segments: deque[tuple[float, int]] = deque()  # (first byte starts, byte count)
        self.baud: int | None = None
        self.rate: float | None = None
        self._free_at = 0.0
        self.set_baud(baud)

    def set_baud(self, baud: int | None) -> None:
        """Change the line speed; bytes already queued start again at the new rate from now."""
        self.baud = baud
        self.rate = baud / 10 if baud else None
        self._free_at = 0.0
        self._segments.clear()
        if self.rate is not None and self.queue:
            now = self._clock()
            self._segments.append((now, len(self.queue)))
            self._free_at = now + len(self.queue) / self.rate

    def __len__(self) -> int:
        return len(self.queue)

    def put(self, data: bytes) -> None:
        if not data:
            return
        self.queue += data
        if self.rate is not None:
            start = max(self._clock(), self._free_at)
            self._free_at = start + len(data) / self.rate
            self._segments.append((start, len(data)))

    def ready(self, now: float) -> int:
        """How many bytes at the head have fully crossed the line by ``now``."""
        if self.rate is None:
            return len(self.queue)
        count = 0
        for start, size in self._segments:
            # (a byte due exactly now has arrived: float rounding must not keep it back)
            done = min(size, int((now - start) * self.rate + ROUNDING)) if now > start else 0
            count += done
            if done < size:
                break
        return count

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes (the rest keep their arrival times)."""
        data = bytes(self.queue[:n])
        del self.queue[:n]
        while n and self._segments:
            start, size = self._segments[0]
            if n >= size:
                self._segments.popleft()
                n -= size
            else:
                assert self.rate is not None
                self._segments[0] = (start + n / self.rate, size - n)
                n = 0
        return data

    def wait(self, now: float) -> float:
        """Seconds until the next byte has arrived (at least a millisecond: batches, not bytes)."""
        if not self.queue:
            return 0.0
        if self.rate is None or not self._segments:
            return 0.001
        start, _ = self._segments[0]
        return max(0.001, start + 1 / self.rate - now)

    def clear(self) -> None:
        self.queue.clear()
        self._segments.clear()
        self._free_at = 0.0


class Relay:
    """Both directions between the host's serial port and the board's UART.

    ``rx`` carries what the host sends (port -> board), ``tx`` what the board sends
    (board -> port); both at the line's baud rate. Faults act here, on the bytes in flight:
    a stall holds both directions, a hang swallows the board's output; drop, corrupt and noise
    act on bytes crossing towards the host at any position (``FaultInjector.to_host``), corrupt
    with direction "both" also on the host's bytes towards the board.
    """

    def __init__(
        self, baud: int | None, faults: FaultInjector, clock: Clock = time.monotonic
    ) -> None:
        self.rx = Wire(baud, clock)
        self.tx = Wire(baud, clock)
        self.faults = faults
        #: What the board said last (after faults), for crash reports.
        self.last_output = b""

    @property
    def baud(self) -> int | None:
        return self.rx.baud

    def set_baud(self, baud: int | None) -> None:
        self.rx.set_baud(baud)
        self.tx.set_baud(baud)

    def clear(self) -> None:
        """Both directions lose what is in flight (the cable was pulled)."""
        self.rx.clear()
        self.tx.clear()

    def wants_board_output(self) -> bool:
        """False while the port's side is too far behind: stop reading the board (backpressure)."""
        return len(self.tx) < TX_HIGH_WATER

    def from_port(self, data: bytes) -> None:
        """Bytes the host wrote to the port start towards the board."""
        self.rx.put(self.faults.to_board(data))

    def from_board(self, data: bytes, plugged: bool = True) -> None:
        """Bytes the board wrote start towards the port (lost if no cable is plugged in)."""
        if self.faults.hang or not data:
            return  # a hung board says nothing
        self.last_output = (self.last_output + data)[-512:]
        data = self.faults.to_host(data)
        if data and plugged:
            self.tx.put(data)

    def inject_noise(self, noise: bytes) -> None:
        self.tx.put(noise)

    def read_board(self, fd: int, plugged: bool = True) -> int:
        """Read what the board's UART has for us from ``fd`` (non-blocking); bytes read."""
        try:
            data = os.read(fd, 65536)
        except OSError:
            return 0
        self.from_board(data, plugged)
        return len(data)

    def drain_board(self, fd: int, plugged: bool = True) -> None:
        """Relay everything the board has written so far (before a reset or after it exited:
        bytes that left a board before it reset still reach the host)."""
        for _ in range(MAX_DRAIN_READS):
            if not self.read_board(fd, plugged):
                return

    def pump(
        self,
        now: float,
        deliver: Callable[[bytes], None] | None,
        write_port: Callable[[bytes], int] | None,
    ) -> float | None:
        """Move the bytes that have crossed the line by ``now``: to the board through ``deliver``
        (None: the board takes nothing now) and to the port through ``write_port`` (returns how
        many bytes it took; None: no port). Returns seconds until it wants to run again."""
        stalled = self.faults.stalled(now)
        if stalled:
            return stalled
        waits: list[float] = []
        if self.rx and deliver is not None:
            n = self.rx.ready(now)
            if n:
                deliver(self.rx.take(n))
            if self.rx:
                waits.append(self.rx.wait(now))
        if self.tx and write_port is not None:
            n = self.tx.ready(now)
            if n:
                written = write_port(bytes(self.tx.queue[:n]))
                self.tx.take(written)
                if written < n:
                    waits.append(PORT_BUSY_RETRY)  # the reader is behind: its buffer is full
            if self.tx:
                waits.append(self.tx.wait(now))
        return min(waits) if waits else None

    def flush_to_port(self, write_port: Callable[[bytes], int]) -> None:
        """Hand the port everything queued at once, ignoring the line speed (the board is about
        to reset: what it sent has left it)."""
        with contextlib.suppress(OSError):
            self.tx.take(write_port(bytes(self.tx.queue)))
