"""A tiny client for QEMU's human monitor (HMP) on a Unix socket.

Why HMP and not QMP: the three things a board needs (``system_reset``, ``stop`` + ``pmemsave``,
``quit``) are one line each, and HMP needs no capabilities handshake. Every exchange has a
deadline: a wedged QEMU must not hang the server.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from hil.deadline import Deadline, as_deadline
from hil.errors import SimError
from hil.sim.qemu.sockets import connect_unix

PROMPT = b"(qemu) "
#: Longest Unix socket path the kernel takes (``sun_path`` is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
_ESCAPES = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")


class Monitor:
    """Send one HMP command at a time; each call connects, runs it and disconnects.

    One connection per command keeps no state between calls (QEMU serves one client at a time
    and a new one gets a fresh prompt), so a half-read answer can never leak into the next.
    """

    def __init__(self, path: Path, *, where: str = "qemu monitor") -> None:
        self.path = path
        self.where = where

    def command(self, line: str, deadline: Deadline | float = 5.0) -> str:
        """Run ``line``; return its output (without the echo and the prompt)."""
        deadline = as_deadline(deadline)
        with self._connect(deadline) as sock:
            self._read_until_prompt(sock, deadline, f"the prompt before {line!r}")
            sock.sendall(line.encode() + b"\n")
            raw = self._read_until_prompt(sock, deadline, f"the answer to {line!r}")
        # HMP echoes the line as it is typed (with cursor escapes) up to the first newline.
        _echo, _, answer = raw.partition(b"\n")
        return _ESCAPES.sub(b"", answer).decode(errors="replace").replace("\r", "").strip()

    def quit(self, deadline: Deadline | float = 5.0) -> None:
        """``quit``: QEMU exits and closes the connection without a prompt."""
        deadline = as_deadline(deadline)
        with self._connect(deadline) as sock:
            self._read_until_prompt(sock, deadline, "the prompt before 'quit'")
            sock.sendall(b"quit\n")
            while not deadline.expired:
                sock.settimeout(max(deadline.remaining, 0.01))
                try:
                    if not sock.recv(4096):
                        return
                except TimeoutError:
                    break
                except OSError:
                    return
        raise SimError("QEMU did not quit in time", where=self.where)

    def _connect(self, deadline: Deadline) -> socket.socket:
        return connect_unix(self.path, deadline, what="the QEMU monitor", where=self.where)

    def _read_until_prompt(self, sock: socket.socket, deadline: Deadline, what: str) -> bytes:
        data = b""
        while not data.endswith(PROMPT):
            if deadline.expired:
                raise SimError(
                    f"timed out waiting for {what}; got {data[-120:]!r}", where=self.where
                )
            sock.settimeout(max(deadline.remaining, 0.01))
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                raise SimError(
                    f"QEMU closed the monitor while waiting for {what}", where=self.where
                )
            data += chunk
        return data[: -len(PROMPT)]
