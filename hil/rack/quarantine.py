"""Boards taken out for the rest of one test run.

A board that stops answering and cannot be recovered must not be handed out again in the same run,
by any xdist worker of it. Each quarantined board is a small marker file in a directory scoped to
the run (``<lock_dir>/runs/<run-id>/quarantine/<board>.json``), which every worker of the run
sees and no other run does: the next run starts with every board in service again.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import time
from pathlib import Path

from hil.errors import ConfigError
from hil.rack._files import read_json, write_json_atomic
from hil.rack._validate import BOARD_ID

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclasses.dataclass(frozen=True)
class QuarantineRecord:
    """Why and when a board was taken out, and by which process."""

    board: str
    reason: str
    since: float
    pid: int | None = None
    host: str = ""
    worker: str | None = None

    def __str__(self) -> str:
        by = f" (by {self.worker})" if self.worker else ""
        return f"{self.board}: {self.reason}{by}"


def run_dir(lock_dir: str | Path, run_id: str) -> Path:
    """The directory that all processes of run ``run_id`` share (xdist's ``testrunuid``)."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ConfigError(f"bad run id {run_id!r} (letters, digits, '.', '_', '-')", where="lease")
    return Path(lock_dir) / "runs" / run_id


def prune_run_dirs(lock_dir: str | Path, *, older_than: float = 7 * 24 * 3600) -> list[Path]:
    """Remove run directories untouched for ``older_than`` seconds; returns what was removed.

    Run directories hold nothing a later run needs; this keeps them from piling up.
    """
    removed = []
    runs = Path(lock_dir) / "runs"
    cutoff = time.time() - older_than
    for entry in runs.iterdir() if runs.is_dir() else ():
        try:
            newest = max([entry.stat().st_mtime, *(p.stat().st_mtime for p in entry.rglob("*"))])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


class Quarantine:
    """The quarantined boards of one run, shared through marker files in ``directory``."""

    def __init__(self, directory: str | Path, *, worker: str | None = None) -> None:
        self.directory = Path(directory)
        self.worker = worker

    @classmethod
    def for_run(cls, lock_dir: str | Path, run_id: str, *, worker: str | None = None) -> Quarantine:
        """The quarantine of run ``run_id`` under ``lock_dir``."""
        return cls(run_dir(lock_dir, run_id) / "quarantine", worker=worker)

    def _marker(self, board_id: str) -> Path:
        if not isinstance(board_id, str) or not BOARD_ID.match(board_id):
            raise ConfigError(f"bad board id {board_id!r}", where=f"quarantine {self.directory}")
        return self.directory / f"{board_id}.json"

    def add(self, board_id: str, reason: str) -> QuarantineRecord:
        """Take ``board_id`` out for the rest of the run; the first reason given is kept."""
        existing = self.get(board_id)
        if existing is not None:
            return existing
        record = QuarantineRecord(
            board=board_id,
            reason=" ".join(reason.split()) or "no reason given",
            since=time.time(),
            pid=os.getpid(),
            host=socket.gethostname(),
            worker=self.worker,
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._marker(board_id), dataclasses.asdict(record))
        return record

    def get(self, board_id: str) -> QuarantineRecord | None:
        """The record of ``board_id`` if it is quarantined in this run, else None.

        A marker that cannot be read still counts: a board is out if its marker exists.
        """
        marker = self._marker(board_id)
        data = read_json(marker)
        if data is None:
            if not marker.exists():
                return None
            return QuarantineRecord(board_id, "quarantined (record unreadable)", 0.0)
        try:
            return QuarantineRecord(
                board=board_id,
                reason=str(data.get("reason", "")),
                since=float(data.get("since", 0.0)),
                pid=data.get("pid") if isinstance(data.get("pid"), int) else None,
                host=str(data.get("host", "")),
                worker=data.get("worker") if isinstance(data.get("worker"), str) else None,
            )
        except (TypeError, ValueError):
            return QuarantineRecord(board_id, "quarantined (record unreadable)", 0.0)

    def __contains__(self, board_id: object) -> bool:
        return isinstance(board_id, str) and self.get(board_id) is not None

    def records(self) -> dict[str, QuarantineRecord]:
        """Every board quarantined in this run, by id."""
        if not self.directory.is_dir():
            return {}
        records = {}
        for marker in sorted(self.directory.glob("*.json")):
            record = self.get(marker.stem)
            if record is not None:
                records[marker.stem] = record
        return records
