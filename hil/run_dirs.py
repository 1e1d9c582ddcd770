"""A test run's own directory under the temp directory (``mpy-hil-run-<id>``: its virtual boards,
their images and the run's leases), and the clean-up of those that runs left behind.

Why: the directory holds tens of MB of flash and card images. A run that ends normally removes
it; one killed with SIGKILL cannot, and one killed with SIGTERM did not. So the directory records
its owner (the run's main process: pid and start time, which together name one process even
after the pid is reused), each run removes at its start the directories of owners that are gone,
and SIGTERM becomes a KeyboardInterrupt, which pytest answers with its normal ending (fixtures
torn down, boards stopped, directory removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from hil.errors import ConfigError
from hil.private_dir import check_private, write_private

__all__ = ["SigtermAsInterrupt", "create", "path_for", "prune_stale"]

PREFIX = "mpy-hil-run-"
OWNER_FILE = "owner.json"
#: A run directory without an owner record (cut short while being made, or made by an older
#: version) is stale after this many seconds untouched.
UNOWNED_AGE = 3600.0


def path_for(run_id: str, base: str | Path | None = None) -> Path:
    """Where run ``run_id`` keeps its directory (not created here)."""
    return Path(base or tempfile.gettempdir()) / f"{PREFIX}{run_id}"


def create(path: Path, owner_pid: int) -> Path:
    """Create the run directory (0700, this user's only) and record its owner process.

    Like ``tempfile.mkdtemp``, the name must be new: a directory already there under a run's
    random name was not made by this run, and is refused (``ConfigError``), never used."""
    directory = Path(os.path.abspath(path))
    try:
        os.mkdir(directory, 0o700)
    except OSError as e:
        raise ConfigError(
            f"cannot create the run directory: {e.strerror or e}", where=str(directory)
        ) from None
    check_private(directory, what="run directory")
    record = {"pid": owner_pid, "started": process_start(owner_pid)}
    write_private(directory / OWNER_FILE, json.dumps(record))
    return directory


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_gone(directory: Path, *, now: float | None = None) -> bool:
    """True when the run that made ``directory`` has ended (its owner process is gone)."""
    try:
        record: Any = json.loads((directory / OWNER_FILE).read_text())
        pid, started = int(record["pid"]), record.get("started")
    except (OSError, ValueError, TypeError, KeyError):
        try:
            age = (now or time.time()) - directory.stat().st_mtime
        except OSError:
            return False
        return age > UNOWNED_AGE
    current = process_start(pid)
    return current is None or (started is not None and current != started)


def prune_stale(base: str | Path | None = None) -> list[Path]:
    """Remove the run directories under ``base`` (the temp directory) whose run has ended;
    only this user's, and only real directories. Their virtual boards are stopped first (they
    stop by themselves once their owner is gone; this does not wait for that)."""
    removed = []
    top = Path(base or tempfile.gettempdir())
    try:
        entries = [e for e in top.iterdir() if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            st = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if not owner_gone(entry):
            continue
        if (entry / "sim").is_dir():
            import hil.sim

            with contextlib.suppress(Exception):
                hil.sim.stop(entry / "sim", timeout=5.0)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


class SigtermAsInterrupt:
    """While installed, the first SIGTERM raises KeyboardInterrupt in the main thread (pytest
    then ends the run as after Ctrl-C, cleaning up); a second one ends the process at once."""

    def __init__(self) -> None:
        self._previous: Any = None
        self.installed = False

    def install(self) -> bool:
        """Take SIGTERM unless someone else handles it already or this is not the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            return False
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self.installed = True
        return True

    def uninstall(self) -> None:
        if self.installed and signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self._previous)
        self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt("terminated (SIGTERM)")
