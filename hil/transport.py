"""The byte link to a board: pyserial underneath, a deadline on every read, a transcript tap.

Why not pyserial alone: its reads block for a fixed per-port timeout and say nothing when they give
up, which is how mpremote ends up hanging forever on a wedged board. Here every read has an overall
deadline and optionally an inter-byte timeout, a timeout raises ``BoardTimeout`` carrying the last
bytes the board sent, a dead port raises ``LinkError``, and every byte is recorded with its
direction and time.

``Transport`` does not care what it reads from: it takes an *opener* returning a pyserial-like port
(``read``, ``write``, ``in_waiting``, ``close``). ``Transport.open(url)`` uses
``serial.serial_for_url``, so device paths, ``rfc2217://`` and ``socket://`` all work; unit tests
pass an opener that replays recorded bytes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import NoReturn, Protocol

import serial

from hil.deadline import Deadline, as_deadline
from hil.errors import TAIL_BYTES, BoardTimeout, ConfigError, LinkError, seconds_text
from hil.transcript import Direction, Transcript

#: How long one low-level read may block: the granularity at which deadlines are noticed.
POLL_SECONDS = 0.02


class PortLike(Protocol):
    """What ``Transport`` needs of a port: the subset of ``serial.Serial`` it uses."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def open_serial(
    url: str,
    *,
    baudrate: int = 115200,
    exclusive: bool = True,
    dtr: bool | None = None,
    rts: bool | None = None,
    write_timeout: float = 10.0,
) -> serial.SerialBase:
    """Open a port by pyserial URL without resetting the board.

    ``dtr``/``rts`` None keeps the state the OS gives an opened port (asserted, as every terminal
    program does): changing either on open resets or bootloads ESP boards, so that only happens when
    a rack entry asks. ``exclusive`` takes an advisory lock on device paths (other schemes ignore
    it), so two workers can never share one board.
    """
    options: dict[str, object] = {"baudrate": baudrate, "timeout": POLL_SECONDS}
    if not url.startswith("rfc2217://"):
        # pyserial's RFC 2217 client has no write timeout; its own network timeout bounds writes
        options["write_timeout"] = write_timeout
    try:
        port = serial.serial_for_url(url, do_not_open=True, **options)
    except ValueError as exc:  # unknown URL scheme or bad setting
        raise ConfigError(f"cannot use serial URL {url!r}: {exc}", where=url) from exc
    port.exclusive = exclusive
    if dtr is not None:
        port.dtr = dtr
    if rts is not None:
        port.rts = rts
    try:
        port.open()
    except (serial.SerialException, OSError) as exc:
        raise LinkError(f"cannot open port {url}: {_why(exc)}", where=url) from exc
    return port


def _why(exc: BaseException) -> str:
    """pyserial's reason without its repetitions (``[Errno 2] could not open port X: [Errno 2]
    No such file or directory: 'X'``): the OS's words when there is an errno."""
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno > 0:
        return os.strerror(errno)
    return str(exc)


class Transport:
    """A board's byte link with deadlines, buffering and a transcript.

    Received bytes are buffered here, so ``read_until`` returns exactly up to its marker and
    leaves the rest for the next read. ``write`` may be called from another thread while a read
    is in progress (that is how a running program is interrupted).
    """

    def __init__(
        self,
        opener: Callable[[], PortLike],
        *,
        name: str,
        tap: Transcript | None = None,
    ) -> None:
        self._opener = opener
        self.name = name
        self.tap = tap if tap is not None else Transcript()
        self._port: PortLike | None = None
        self._buf = bytearray()
        self._tail = bytearray()

    @classmethod
    def open(
        cls,
        url: str | Callable[[], str],
        *,
        baudrate: int = 115200,
        exclusive: bool = True,
        dtr: bool | None = None,
        rts: bool | None = None,
        write_timeout: float = 10.0,
        tap: Transcript | None = None,
        wait: Deadline | float = 0.0,
        name: str | None = None,
    ) -> Transport:
        """Open a serial URL (or a callable that finds the current path of a re-enumerating port).

        ``wait`` keeps retrying while the port is missing or busy, for a board that is still
        booting or being released by another process.
        """

        def opener() -> PortLike:
            path = url() if callable(url) else url
            return open_serial(
                path,
                baudrate=baudrate,
                exclusive=exclusive,
                dtr=dtr,
                rts=rts,
                write_timeout=write_timeout,
            )

        label = name or (url if isinstance(url, str) else "serial")
        transport = cls(opener, name=label, tap=tap)
        transport.connect(wait)
        return transport

    # -- connection ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> PortLike | None:
        """The underlying pyserial port while open: for rack drivers that pulse DTR/RTS.
        Reading or writing through it bypasses the buffer and the transcript."""
        return self._port

    def connect(self, wait: Deadline | float = 0.0) -> None:
        """Open the port, retrying with backoff until ``wait`` expires (a port can vanish for a
        while when a board resets and its USB re-enumerates)."""
        deadline = as_deadline(wait)
        backoff = 0.05
        while True:
            try:
                self._port = self._opener()
            except LinkError as exc:
                if deadline.expired:
                    raise LinkError(exc.what, where=self.name, tail=self.tail) from exc
                time.sleep(min(backoff, deadline.remaining))
                backoff = min(backoff * 2, 0.5)
                continue
            self._buf.clear()
            self.tap.note(f"port {self.name} opened")
            return

    def close(self) -> None:
        """Close the port; idempotent. Buffered bytes are discarded."""
        port, self._port = self._port, None
        self._buf.clear()
        if port is not None:
            # closing a port that already vanished is not an error
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
            self.tap.note(f"port {self.name} closed")

    def reopen(self, wait: Deadline | float) -> None:
        """Close and open again (after a hard reset), retrying until ``wait`` expires."""
        self.close()
        self.connect(wait)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bytes out -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send bytes; a port that blocks past its write timeout is a board that stopped reading."""
        port = self._require_port()
        self.tap.record(Direction.TX, data)
        try:
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise BoardTimeout(
                f"board stopped reading: write of {len(data)} bytes timed out",
                where=self.name,
                tail=self.tail,
            ) from exc
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)

    # -- bytes in --------------------------------------------------------------------------

    @property
    def tail(self) -> bytes:
        """The last bytes received (consumed or not): what an error shows."""
        return bytes(self._tail)

    def read_until(
        self,
        markers: bytes | Iterable[bytes],
        *,
        deadline: Deadline | float,
        inter_byte_timeout: float | None = None,
        on_data: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """Read up to and including the first occurrence of a marker; return those bytes.

        With several markers the one that occurs first in the stream wins (``result.endswith``
        tells which). With ``on_data``, bytes before the marker are handed over as they arrive
        (streaming) and only the marker itself is returned. Raises ``BoardTimeout`` when the
        deadline passes or no byte arrives for ``inter_byte_timeout`` seconds.
        """
        wanted = (markers,) if isinstance(markers, bytes) else tuple(markers)
        if not wanted or not all(wanted):
            raise ValueError("read_until needs non-empty markers")
        longest = max(len(m) for m in wanted)
        deadline = as_deadline(deadline)
        scan = 0
        while True:
            end = _first_match_end(self._buf, wanted, scan)
            if end >= 0:
                if on_data is not None:
                    marker = next(m for m in wanted if self._buf.endswith(m, 0, end))
                    head = end - len(marker)
                    if head:
                        on_data(bytes(self._buf[:head]))
                    del self._buf[:end]
                    return marker
                out = bytes(self._buf[:end])
                del self._buf[:end]
                return out
            scan = max(len(self._buf) - longest + 1, 0)
            if on_data is not None and scan:
                chunk = bytes(self._buf[:scan])
                del self._buf[:scan]
                scan = 0
                on_data(chunk)
            self._fill(deadline, inter_byte_timeout, waiting_for=wanted)

    def read_exact(
        self, size: int, *, deadline: Deadline | float, inter_byte_timeout: float | None = None
    ) -> bytes:
        """Read exactly ``size`` bytes."""
        deadline = as_deadline(deadline)
        while len(self._buf) < size:
            self._fill(deadline, inter_byte_timeout, waiting_for=(f"{size} bytes",))
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def read_some(self, *, deadline: Deadline | float) -> bytes:
        """Return at least one byte: whatever is buffered or arrives first."""
        if not self._buf:
            self._fill(as_deadline(deadline), None, waiting_for=("any byte",))
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def read_available(self) -> bytes:
        """Return what has arrived so far without waiting (may be empty)."""
        self._pull(block=False)
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def drain(self, *, quiet: float, deadline: Deadline | float) -> bytes:
        """Read and return everything until the board is silent for ``quiet`` seconds.

        Stops at ``deadline`` even if the board keeps talking (a program printing in a loop):
        draining is a best effort before re-synchronising, never a reason to fail.
        """
        deadline = as_deadline(deadline)
        out = bytearray(self._buf)
        self._buf.clear()
        silence = deadline.cap(quiet)
        while not silence.expired and not deadline.expired:
            if self._pull(block=True):
                out += self._buf
                self._buf.clear()
                silence = deadline.cap(quiet)
        return bytes(out)

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (a parser that looked one byte too far)."""
        self._buf[:0] = data

    # -- internals -------------------------------------------------------------------------

    def _require_port(self) -> PortLike:
        if self._port is None:
            raise LinkError("port is closed", where=self.name, tail=self.tail)
        return self._port

    def _lost(self, exc: BaseException) -> NoReturn:
        """The port failed under us: close it so later calls fail fast, and say so."""
        self._port = None
        self.tap.note(f"link lost: {exc}")
        raise LinkError(f"link lost: {exc}", where=self.name, tail=self.tail) from exc

    def _pull(self, *, block: bool) -> int:
        """One low-level read into the buffer; returns how many bytes arrived.

        Blocking means at most ``POLL_SECONDS`` (the port's own timeout), so callers notice
        their deadlines.
        """
        port = self._require_port()
        try:
            waiting = port.in_waiting
            if not waiting and not block:
                return 0
            data = port.read(max(waiting, 1))
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
        if data:
            self.tap.record(Direction.RX, data)
            self._buf += data
            self._tail += data
            if len(self._tail) > 2 * TAIL_BYTES:
                del self._tail[:-TAIL_BYTES]
        return len(data)

    def _fill(
        self, deadline: Deadline, inter_byte_timeout: float | None, *, waiting_for: tuple
    ) -> None:
        """Wait for at least one more byte, or raise ``BoardTimeout``."""
        quiet = deadline.cap(inter_byte_timeout) if inter_byte_timeout is not None else deadline
        while True:
            if self._pull(block=True):
                return
            if quiet.expired:
                what = " or ".join(repr(w) if isinstance(w, bytes) else str(w) for w in waiting_for)
                if deadline.expired:
                    why = f"no {what} within {seconds_text(deadline.seconds)}"
                else:
                    silent = seconds_text(inter_byte_timeout or 0.0)
                    why = f"board silent for {silent} while waiting for {what}"
                raise BoardTimeout(why, where=self.name, tail=self.tail)


def _first_match_end(buf: bytearray, markers: tuple[bytes, ...], start: int) -> int:
    """End index of the marker occurrence that starts first at or after ``start``, or -1."""
    best_start, best_end = -1, -1
    for marker in markers:
        i = buf.find(marker, start)
        if i >= 0 and (best_start < 0 or i < best_start):
            best_start, best_end = i, i + len(marker)
    return best_end
