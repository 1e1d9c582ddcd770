"""Unix sockets whose paths may exceed the kernel's 108-byte limit (pytest's tmp paths do).

A long path is reached through ``/proc/self/fd/<dir fd>/<name>``: short, and still the same file.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

_MAX_PATH = 100


@contextlib.contextmanager
def _short_path(path: Path) -> Iterator[str]:
    if len(str(path)) <= _MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def bind_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _short_path(path) as short:
        sock.bind(short)
    return sock


def connect_unix(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short_path(path) as short:
            sock.connect(short)
    except OSError:
        sock.close()
        raise
    return sock
