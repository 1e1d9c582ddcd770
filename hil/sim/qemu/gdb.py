"""Write the board's flash through QEMU's gdbstub, before its CPU runs.

Why: QEMU writes a loaded image into flash again on every reset, so the flash filesystem that a
board keeps across a power cycle cannot be loaded with the firmware (the reset button would
bring back the files of the last power-on). The gdbstub's memory write goes straight into the
flash's storage and happens once: QEMU starts halted (``-S``), the saved filesystem pages are
written here, and the monitor's ``cont`` lets the CPU run (closing this connection without a
detach leaves the VM halted).

Only the one packet this needs of the GDB remote serial protocol: ``M`` (write memory). Every
read has a deadline.
"""

from __future__ import annotations

from pathlib import Path

from hil.deadline import Deadline, as_deadline
from hil.errors import SimError
from hil.sim.qemu.sockets import connect_unix

#: Bytes of memory per ``M`` packet: QEMU's packet buffer holds 4 KiB of hex text.
CHUNK = 1024


def _packet(payload: bytes) -> bytes:
    return b"$" + payload + b"#" + f"{sum(payload) & 0xFF:02x}".encode()


class GdbWriter:
    """A connection to one QEMU gdbstub on a Unix socket."""

    def __init__(self, path: Path, deadline: Deadline | float = 5.0, *, where: str = "") -> None:
        self.where = where or f"qemu gdbstub {path}"
        self._buffer = b""
        self._sock = connect_unix(
            path, as_deadline(deadline), what="QEMU's gdbstub", where=self.where
        )

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> GdbWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_memory(self, address: int, data: bytes, deadline: Deadline | float = 10.0) -> None:
        """Write ``data`` at ``address``, in packets; each must be answered ``OK``."""
        deadline = as_deadline(deadline)
        for offset in range(0, len(data), CHUNK):
            chunk = data[offset : offset + CHUNK]
            payload = f"M{address + offset:x},{len(chunk):x}:".encode() + chunk.hex().encode()
            answer = self.request(payload, deadline)
            if answer != b"OK":
                raise SimError(
                    f"gdbstub refused a write at {address + offset:#x}: {answer!r}",
                    where=self.where,
                )

    def request(self, payload: bytes, deadline: Deadline) -> bytes:
        """Send one packet, wait for its ``+`` and its answer packet (which is acknowledged)."""
        self._sock.sendall(_packet(payload))
        while True:
            self._fill(deadline)
            if self._buffer.startswith(b"+"):
                self._buffer = self._buffer[1:]
                continue
            if self._buffer.startswith(b"-"):
                raise SimError("gdbstub asked for a retransmission", where=self.where)
            start = self._buffer.find(b"$")
            end = self._buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self._buffer) >= end + 3:
                answer = self._buffer[start + 1 : end]
                self._buffer = self._buffer[end + 3 :]
                self._sock.sendall(b"+")
                return answer

    def _fill(self, deadline: Deadline) -> None:
        if self._buffer:
            complete = self._buffer[:1] in (b"+", b"-") or (
                b"#" in self._buffer and len(self._buffer) >= self._buffer.find(b"#") + 3
            )
            if complete:
                return
        if deadline.expired:
            raise SimError(
                f"gdbstub did not answer in time; got {self._buffer[-80:]!r}", where=self.where
            )
        self._sock.settimeout(max(deadline.remaining, 0.01))
        try:
            chunk = self._sock.recv(4096)
        except TimeoutError:
            chunk = None
        if chunk == b"":
            raise SimError("gdbstub closed the connection", where=self.where)
        if chunk:
            self._buffer += chunk
