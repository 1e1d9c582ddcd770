"""The host's view of a virtual board's USB serial port: a pty pair whose slave is the device,
published as a symlink that vanishes while the board is unplugged.

Why a symlink: a pty's own name is chosen by the kernel; tests and racks need a stable path,
and opening a missing path fails the way opening a vanished USB device does. A replug may move
the board to a new path (``new_path``), as re-enumeration can on a real host.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import tty
from pathlib import Path


def set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


class Port:
    """The board's serial device as the host sees it (``<directory>/port``)."""

    def __init__(self, directory: Path, name: str = "port") -> None:
        self.dir = directory
        self.name = name
        self.link = directory / name
        self.master: int | None = None
        self.slave: int | None = None
        self._index = 0

    @property
    def plugged(self) -> bool:
        return self.master is not None

    @property
    def tty(self) -> str | None:
        """The pty device behind the link (None while unplugged)."""
        return os.ttyname(self.slave) if self.slave is not None else None

    def plug(self, new_path: bool = False) -> None:
        """The board appears on the host: a fresh raw pty, published under the port path."""
        if self.plugged:
            return
        master, slave = pty.openpty()
        tty.setraw(slave)
        set_nonblocking(master)
        self.master, self.slave = master, slave
        if new_path:
            self._index += 1
            self.link = self.dir / f"{self.name}-{self._index}"
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        """The board's USB device vanishes: the path goes away, open handles see a hang-up."""
        if not self.plugged:
            return
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None

    def read(self) -> bytes:
        """What the host wrote to the device (non-blocking; b"" when nothing or unplugged)."""
        if self.master is None:
            return b""
        try:
            return os.read(self.master, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):  # EIO: no process has the device open
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Hand bytes to the host's side; how many it took (0 when its buffer is full)."""
        if self.master is None:
            return 0
        try:
            return os.write(self.master, data)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                return 0
            raise
