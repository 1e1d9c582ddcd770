"""Who holds a place: the name a session announces to the coordinator, and what it tells us.

labgrid records the session name of whoever acquires a place (its own client uses
``host/user``). Ours is ``<host>/hil-<pid>-<run>-<worker>``: unique per process, so that a
release can be made conditional on the holder (``ReleasePlace(fromuser=...)``), and readable,
so that anyone can tell which run and process holds a board, and whether that process is gone
when it ran on the same host.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import socket

_NAME = re.compile(
    r"^(?P<host>[^/]+)/hil-(?P<pid>[0-9]+)-(?P<run>[A-Za-z0-9]+)-(?P<worker>[\w.-]+)$"
)


@dataclasses.dataclass(frozen=True)
class HolderName:
    """A parsed holder name of ours (host, pid, run, worker)."""

    host: str
    pid: int
    run: str
    worker: str

    def __str__(self) -> str:
        return f"{self.host}/hil-{self.pid}-{self.run}-{self.worker}"

    def is_alive(self) -> bool | None:
        """Whether the holding process still exists; None when it ran on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # exists (another user's) or cannot tell: never reclaim on a guess
        return True


def holder_name(*, run: str | None, worker: str | None) -> HolderName:
    """The name for this process's session: this host and pid, the run and the worker."""
    run_part = re.sub(r"[^A-Za-z0-9]", "", run or "")[:12] or secrets.token_hex(4)
    worker_part = re.sub(r"[^\w.-]", "_", worker or "main")[:32]
    return HolderName(socket.gethostname(), os.getpid(), run_part, worker_part)


def parse_holder(name: str | None) -> HolderName | None:
    """Our holder name parsed, or None for a holder that is not an mpy-hil session."""
    match = _NAME.match(name or "")
    if match is None:
        return None
    return HolderName(match["host"], int(match["pid"]), match["run"], match["worker"])
