"""Who holds a place: the name a session announces to the coordinator, and what it tells us.

labgrid records the session name of whoever acquires a place (its own client uses
``host/user``). Ours is ``<host>/hil-<pid>-<where>-<run>-<worker>``: unique per process, so that
a release can be made conditional on the holder (``ReleasePlace(fromuser=...)``), and readable,
so that anyone can tell which run and process holds a board.

Whether the holder is gone can be asked only where its pid means something: the same kernel boot
and the same pid namespace, not merely the same host name (two CI containers may share one).
``<where>`` is a short digest of both; a holder elsewhere is judged by its heartbeat alone.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import secrets
import socket
from pathlib import Path

from hil.processes import pid_alive

_NAME = re.compile(
    r"^(?P<host>[^/]+)/hil-(?P<pid>[0-9]+)-(?P<where>[0-9a-f]{6})-(?P<run>[A-Za-z0-9]+)"
    r"-(?P<worker>[\w.-]+)$"
)


@functools.cache
def pid_space() -> str:
    """A digest of this kernel boot and pid namespace: where a pid names the same process."""
    parts = []
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append(socket.gethostname())  # not Linux: the host name is all there is
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:6]


@dataclasses.dataclass(frozen=True)
class HolderName:
    """A parsed holder name of ours (host, pid, pid space, run, worker)."""

    host: str
    pid: int
    where: str
    run: str
    worker: str

    def __str__(self) -> str:
        return f"{self.host}/hil-{self.pid}-{self.where}-{self.run}-{self.worker}"

    def is_alive(self) -> bool | None:
        """Whether the holding process still exists (a zombie does not); None when its pid is not
        ours to ask."""
        if self.host != socket.gethostname() or self.where != pid_space():
            return None
        alive = pid_alive(self.pid)
        return True if alive is None else alive  # cannot tell: never reclaim on a guess


def holder_name(*, run: str | None, worker: str | None) -> HolderName:
    """The name for this process's session: this host and pid, the run and the worker."""
    run_part = re.sub(r"[^A-Za-z0-9]", "", run or "")[:12] or secrets.token_hex(4)
    worker_part = re.sub(r"[^\w.-]", "_", worker or "main")[:32]
    return HolderName(socket.gethostname(), os.getpid(), pid_space(), run_part, worker_part)


def parse_holder(name: str | None) -> HolderName | None:
    """Our holder name parsed, or None for a holder that is not an mpy-hil session."""
    match = _NAME.match(name or "")
    if match is None:
        return None
    return HolderName(
        match["host"], int(match["pid"]), match["where"], match["run"], match["worker"]
    )
