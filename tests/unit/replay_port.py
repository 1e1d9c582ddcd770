"""A recorded board conversation, replayed as a pyserial-like port for parser tests.

Not a simulated board: it knows nothing of MicroPython. A script is the byte streams of a real
session in order (``("tx", host bytes)``, ``("rx", board bytes)``). Each board reply is released
only once the host has written everything that preceded it, so the host's reads meet the bytes
exactly as a board would have sent them; what the host writes must match the recording, byte
for byte. ``cuts`` splits the board's stream at chosen offsets, so a test can feed the same
recording split at every byte boundary.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

Script = list[tuple[str, bytes]]


class ScriptedPort:
    def __init__(self, script: Script, cuts: Iterable[int] = ()) -> None:
        self.expected_tx = b"".join(data for kind, data in script if kind == "tx")
        self.written = bytearray()
        self.closed = False
        cut_at = set(cuts)
        chunks: deque[tuple[int, bytes]] = deque()
        tx_before = rx_offset = 0
        for kind, data in script:
            if kind == "tx":
                tx_before += len(data)
                continue
            start = 0
            for i in range(1, len(data)):
                if rx_offset + i in cut_at:
                    chunks.append((tx_before, data[start:i]))
                    start = i
            chunks.append((tx_before, data[start:]))
            rx_offset += len(data)
        self.chunks = chunks
        self.rx_total = rx_offset

    @property
    def in_waiting(self) -> int:
        if self.chunks and len(self.written) >= self.chunks[0][0]:
            return len(self.chunks[0][1])
        return 0

    def read(self, size: int = 1) -> bytes:
        if not self.in_waiting:
            return b""  # a real port's read timeout
        gate, data = self.chunks.popleft()
        if size < len(data):
            self.chunks.appendleft((gate, data[size:]))
            data = data[:size]
        return data

    def write(self, data: bytes) -> int:
        self.written += data
        n = len(self.written)
        if self.written != self.expected_tx[:n]:
            expected = self.expected_tx
            at = next(i for i in range(n) if i >= len(expected) or self.written[i] != expected[i])
            raise AssertionError(
                f"host wrote {bytes(self.written[at : at + 40])!r} at offset {at}, the recording "
                f"has {self.expected_tx[at : at + 40]!r}"
            )
        return len(data)

    def close(self) -> None:
        self.closed = True

    @property
    def done(self) -> bool:
        """Whether the conversation was replayed completely (all sent, all read)."""
        return not self.chunks and bytes(self.written) == self.expected_tx


def cut_points(script: Script) -> list[list[int]]:
    """Every way to split the board's stream in two, plus one byte at a time."""
    total = sum(len(data) for kind, data in script if kind == "rx")
    return [[k] for k in range(1, total)] + [list(range(1, total))]
