"""The transcript tap: every byte that crosses a board's link, with its direction and time.

A failing HIL test is only debuggable if one can see exactly what the host sent and what the
board answered, in order, with timing (a stall shows as a gap, a reset as a banner). The transport
records into a ``Transcript``; the pytest plugin and the Allure report attach its rendering.

Recording must be cheap (several MB of output can stream through), so chunks are kept as the
transport saw them and merged only when rendering.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

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
    BEGIN = "{{"  # a named action starts (``Transcript.action``): its exchanges follow
    END = "}}"  # that action is over (its final title, its outcome)


#: How an action shows: a ``STEP`` is a step whose exchanges are shown as they are (a hard
#: reset); a ``GROUP`` is a step whose helper programs are folded into one line of the REPL
#: view (put, deploy, probe); a ``QUIET`` action is bookkeeping of the framework (the free
#: heap measured around a test): no step, not in the REPL view, only on the wire.
#: A ``CHECK`` (the health check after a test) is a step in reports, and in the REPL view only
#: when something in it failed.
STEP, GROUP, QUIET, CHECK = "step", "group", "quiet", "check"


@dataclass
class Action:
    """A user-visible action of the framework (``put main.py (2.1 kB)``) around its exchanges.

    ``title`` may be changed while it runs (``deploy`` knows how many files it sent only at the
    end); ``error`` is what ended it, if anything did.
    """

    title: str
    mode: str = GROUP
    start: float = 0.0
    stop: float | None = None
    mark: int = 0
    error: BaseException | None = None
    depth: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.stop if self.stop is not None else time.monotonic()) - self.start


def action_record(entry: Entry) -> dict[str, Any]:
    """The fields of a BEGIN or END entry: ``title``, ``mode``, and for END ``error``."""
    try:
        value = json.loads(entry.data.decode("utf-8"))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return {"title": entry.data.decode("utf-8", "replace"), "mode": GROUP}
    return value


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
        #: Called with ``("begin" | "end", Action)`` as named actions start and end (reports
        #: turn them into steps); set per test by the pytest plugin.
        self.action_listeners: list[Callable[[str, Action], None]] = []
        self._open: list[Action] = []

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

    @contextlib.contextmanager
    def action(self, title: str, *, mode: str = GROUP) -> Iterator[Action]:
        """Mark the exchanges inside as one action of the framework, named for a person.

        The action is recorded in the transcript (so the REPL view can fold a ``put``'s helper
        programs into one line) and told to ``action_listeners`` (so a report makes it a step).
        A listener that fails is ignored: reporting must never fail the action itself.
        """
        act = Action(title, mode, start=time.monotonic(), depth=len(self._open))
        act.mark = self.mark()
        self._record_action(Direction.BEGIN, {"title": title, "mode": mode})
        self._open.append(act)
        self._tell("begin", act)
        try:
            yield act
        except BaseException as exc:
            act.error = exc
            raise
        finally:
            act.stop = time.monotonic()
            if self._open and self._open[-1] is act:
                self._open.pop()
            error = None if act.error is None else f"{type(act.error).__name__}: {act.error}"
            self._record_action(Direction.END, {"title": act.title, "mode": mode, "error": error})
            self._tell("end", act)

    @property
    def in_action(self) -> Action | None:
        """The innermost action still running, if any."""
        return self._open[-1] if self._open else None

    def _record_action(self, direction: Direction, fields: dict[str, Any]) -> None:
        self.record(direction, json.dumps(fields).encode("utf-8"))

    def _tell(self, event: str, act: Action) -> None:
        for listener in list(self.action_listeners):
            with contextlib.suppress(Exception):
                listener(event, act)

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
        if entry.direction in (Direction.BEGIN, Direction.END):
            if run:
                yield from _split(run)
                run = []
            fields = action_record(entry)
            what = fields.get("title", "")
            if entry.direction is Direction.END and fields.get("error"):
                what += f" (failed: {fields['error']})"
            yield entry.t, entry.direction, what
            continue
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
