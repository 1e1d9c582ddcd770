"""The transcript tap: every byte that crosses a board's link, with its direction and time.

A failing HIL test is only debuggable if one can see exactly what the host sent and what the
board answered, in order, with timing (a stall shows as a gap, a reset as a banner). The transport
records into a ``Transcript``; the pytest plugin and the Allure report attach its rendering.

Recording must be cheap (several MB of output can stream through), so chunks are kept as the
transport saw them and merged only when rendering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

#: Control bytes of the MicroPython REPL, rendered by name so a reader sees the protocol.
CONTROL_NAMES = {
    0x01: "<CTRL-A>",
    0x02: "<CTRL-B>",
    0x03: "<CTRL-C>",
    0x04: "<CTRL-D>",
    0x05: "<CTRL-E>",
}


class Direction(Enum):
    """Who produced a transcript entry."""

    TX = "->"  # host to board
    RX = "<-"  # board to host
    NOTE = "##"  # a remark by the host software (what it is about to do, what it concluded)


@dataclass(frozen=True)
class Entry:
    """One chunk as the transport wrote or read it; ``t`` is ``time.monotonic()``."""

    t: float
    direction: Direction
    data: bytes


class Transcript:
    """A thread-safe, append-only record of a link's traffic.

    ``max_bytes`` bounds memory for very long sessions: the oldest entries are dropped first and
    ``dropped_bytes`` says how much was lost, so a rendering never silently hides a gap.
    """

    def __init__(
        self,
        *,
        max_bytes: int | None = 16 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: list[Entry] = []
        self._lock = threading.Lock()
        self._clock = clock
        self._size = 0
        self._base = 0  # how many entries were dropped from the front (positions stay stable)
        self.max_bytes = max_bytes
        self.dropped_bytes = 0
        self.start = clock()

    def record(self, direction: Direction, data: bytes) -> None:
        """Append one chunk (called by the transport for every write and every read)."""
        if not data:
            return
        entry = Entry(self._clock(), direction, bytes(data))
        with self._lock:
            self._entries.append(entry)
            self._size += len(entry.data)
            if self.max_bytes is not None and self._size > self.max_bytes:
                self._drop_oldest(self.max_bytes * 3 // 4)

    def _drop_oldest(self, target: int) -> None:
        """Drop whole old entries until at most ``target`` bytes remain (in bulk: cheap)."""
        drop = 0
        while self._size > target and len(self._entries) - drop > 1:
            self._size -= len(self._entries[drop].data)
            self.dropped_bytes += len(self._entries[drop].data)
            drop += 1
        del self._entries[:drop]
        self._base += drop

    def note(self, text: str) -> None:
        """Record what the host is doing (e.g. ``exec: print(1)``), so the bytes read in context."""
        self.record(Direction.NOTE, text.encode("utf-8", "replace"))

    def mark(self) -> int:
        """A position to render from later: lets a report attach just one step's bytes."""
        with self._lock:
            return self._base + len(self._entries)

    def entries(self, since: int = 0) -> list[Entry]:
        """A snapshot of the kept entries from position ``since``."""
        with self._lock:
            return self._entries[max(since - self._base, 0) :]

    def payload(self, direction: Direction, since: int = 0) -> bytes:
        """All bytes of one direction, concatenated (what a test asserts on)."""
        return b"".join(e.data for e in self.entries(since) if e.direction is direction)

    def __len__(self) -> int:
        return self.mark()

    def render(self, since: int = 0, *, max_chars: int | None = 200_000) -> str:
        """Readable text: one line per board output line or host write, with relative time.

        Control bytes show by name (``<CTRL-D>``) and other unprintables escaped, so the
        protocol is visible: ``[   0.012] <- raw REPL; CTRL-B to exit\\r\\n>``.
        """
        lines = [
            f"[{t - self.start:9.3f}] {direction.value} {text}"
            for t, direction, text in _lines(self.entries(since))
        ]
        if self.dropped_bytes and since < self._base:
            lines.insert(0, f"(... {self.dropped_bytes} earlier bytes dropped ...)")
        text = "\n".join(lines)
        if max_chars is not None and len(text) > max_chars:
            half = max_chars // 2
            cut = len(text) - 2 * half
            text = f"{text[:half]}\n(... {cut} characters cut ...)\n{text[-half:]}"
        return text


def render_bytes(data: bytes) -> str:
    """Escape bytes for a transcript line: printable ASCII as is, REPL control bytes by name."""
    out: list[str] = []
    for byte in data:
        if byte in CONTROL_NAMES:
            out.append(CONTROL_NAMES[byte])
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _lines(entries: list[Entry]) -> Iterator[tuple[float, Direction, str]]:
    """Merge consecutive chunks of one direction and split board output after each newline."""
    run: list[Entry] = []
    for entry in entries:
        if run and (entry.direction is not run[0].direction or entry.direction is Direction.NOTE):
            yield from _split(run)
            run = []
        run.append(entry)
    if run:
        yield from _split(run)


def _split(run: list[Entry]) -> Iterator[tuple[float, Direction, str]]:
    direction = run[0].direction
    if direction is Direction.NOTE:
        yield run[0].t, direction, run[0].data.decode("utf-8", "replace")
        return
    # Each piece gets the time of the chunk its first byte arrived in.
    pending = bytearray()
    pending_t = run[0].t
    for entry in run:
        start = 0
        data = entry.data
        if not pending:
            pending_t = entry.t
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                pending += data[start:]
                break
            pending += data[start : nl + 1]
            yield pending_t, direction, render_bytes(bytes(pending))
            pending.clear()
            pending_t = entry.t
            start = nl + 1
    if pending:
        yield pending_t, direction, render_bytes(bytes(pending))
