"""Connecting to QEMU's Unix sockets (monitor, gdbstub, UART) with a deadline.

Why a retry: QEMU binds a listening socket before it listens on it, so the socket file can exist
for a moment while a connect is still refused; on a busy machine that moment is long enough to
hit. Refused or missing is retried until the deadline, anything else fails at once.
"""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

from hil.deadline import Deadline
from hil.errors import SimError

RETRY_INTERVAL = 0.01
_RETRY = (errno.ECONNREFUSED, errno.ENOENT, errno.EAGAIN)


def connect_unix(path: Path, deadline: Deadline, *, what: str, where: str) -> socket.socket:
    """A connected (blocking) stream socket to ``path``; SimError naming ``what`` if not."""
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(deadline.remaining, 0.01))
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            if exc.errno not in _RETRY or deadline.expired:
                raise SimError(f"cannot reach {what}: {exc}", where=where) from None
            time.sleep(min(RETRY_INTERVAL, deadline.remaining))
            continue
        return sock
