"""Leases: one board, one holder, across threads, xdist workers, pytest runs and CI jobs.

A lease is an OS file lock (``flock`` on POSIX, ``LockFileEx`` on Windows through ``filelock``) on
``<lock_dir>/<board-id>.lease`` (:mod:`hil.rack.oslock`; also on ``<board-id>.lock``, where an
older mpy-hil left one). The kernel drops the lock when its holder dies, even by ``kill -9``, so
nothing is ever left stale and nobody has to break a lock by age. The file exists while the
board is held: a released lease, a status look or a ``hil rack check`` leaves the directory as
it found it (a killed holder's file stays, free, until the next lease).

Next to each lock, the holder writes ``<board-id>.holder.json`` (pid, host, worker, run, since) so
that a process that waits in vain can say who holds what. That file is only a hint: a dead holder's
file stays behind until the next holder overwrites it, so it is never used to decide whether a
board is free. The lock itself is the truth.

Which directory: everyone sharing a set of boards must use the same one. The default is per user
(:func:`default_lock_dir`), deliberately not ``$XDG_RUNTIME_DIR``, which a CI service and a login
shell of the same user may see differently. A rack shared by several users names a common
``lock_dir`` in its rack file. The directory must be on a local filesystem with working OS locks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from hil.errors import BoardQuarantined, ConfigError, LeaseTimeout
from hil.processes import pid_alive
from hil.rack._files import read_json, write_json_atomic
from hil.rack.inventory import Board
from hil.rack.oslock import OsLock
from hil.rack.quarantine import Quarantine
from hil.rack.selector import Selector

#: How long to wait between two rounds of attempts on the candidate boards.
DEFAULT_POLL_INTERVAL = 0.1


def default_lock_dir() -> Path:
    """``$HIL_LOCK_DIR``, else in the user's cache directory (``~/.cache/mpy-hil/leases``)."""
    explicit = os.environ.get("HIL_LOCK_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mpy-hil" / "leases"


class NoMatchingBoard(ConfigError):
    """No board of the rack can ever satisfy the selector; waiting would not help."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lease: written next to the lock for others to read, never trusted as the lock."""

    pid: int
    host: str
    since: float
    worker: str | None = None
    run: str | None = None
    label: str = ""

    @classmethod
    def current(cls, *, worker: str | None, run: str | None, label: str = "") -> Holder:
        return cls(os.getpid(), socket.gethostname(), time.time(), worker, run, label)

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> Holder | None:
        """Parse a holder file's content; None for anything malformed."""
        if data is None:
            return None
        pid, host, since = data.get("pid"), data.get("host"), data.get("since")
        if not isinstance(pid, int) or not isinstance(host, str):
            return None
        if not isinstance(since, (int, float)):
            return None
        worker, run, label = data.get("worker"), data.get("run"), data.get("label", "")
        return cls(
            pid,
            host,
            float(since),
            worker if isinstance(worker, str) else None,
            run if isinstance(run, str) else None,
            label if isinstance(label, str) else "",
        )

    def is_alive(self) -> bool | None:
        """Whether the holder process still exists (a zombie does not); None when it runs on
        another host, or when its pid cannot be asked about (``hil.processes.pid_alive``)."""
        if self.host != socket.gethostname():
            return None
        return pid_alive(self.pid)

    def describe(self, now: float | None = None) -> str:
        """``pid 4242 on ci-3 (worker gw1, run 8f2a) since 12:00:03, 41 s ago``."""
        now = time.time() if now is None else now
        extra = [
            f"worker {self.worker}" if self.worker else "",
            f"run {self.run}" if self.run else "",
        ]
        extra.append(self.label)
        details = ", ".join(part for part in extra if part)
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        age = max(0, round(now - self.since))
        text = f"pid {self.pid} on {self.host}"
        if details:
            text += f" ({details})"
        return f"{text} since {since}, {age} s ago"


class Lease:
    """A board held exclusively until :meth:`release`, or until the holding process ends.

    Keep a reference for as long as you use the board: a lease that is garbage collected releases
    its lock.
    """

    def __init__(self, board: Board, holder: Holder, lock: OsLock, info: Path) -> None:
        self.board = board
        self.holder = holder
        self._lock = lock
        self._info = info

    @property
    def held(self) -> bool:
        return self._lock.held

    @property
    def lock_path(self) -> Path:
        return self._lock.path

    def release(self) -> None:
        """Give the board back; calling it again does nothing."""
        if not self._lock.held:
            return
        if os.getpid() == self.holder.pid:  # not a forked child's copy: the parent still holds
            # The holder file goes first, while the lock still guards it, so a new holder's
            # file is never removed by an old holder.
            self._info.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"<Lease {self.board.id} {state} by pid {self.holder.pid}>"


@dataclasses.dataclass(frozen=True)
class LockState:
    """What a look at one board's lock found, for status tables and timeout messages."""

    board: str
    free: bool
    holder: Holder | None = None
    quarantined: str | None = None

    def describe(self, now: float | None = None) -> str:
        if self.quarantined is not None:
            return f"{self.board} quarantined in this run ({self.quarantined})"
        if self.free:
            return f"{self.board} free"
        if self.holder is None:
            return f"{self.board} held by an unknown process (no holder info)"
        if self.holder.is_alive() is False:
            return (
                f"{self.board} held, holder info stale (pid {self.holder.pid} on "
                f"{self.holder.host} is gone)"
            )
        return f"{self.board} held by {self.holder.describe(now)}"


class LeaseManager:
    """Hands out leases on the boards of a rack to this process.

    ``worker``, ``run`` and ``label`` are written into the holder info (xdist worker id, run id,
    e.g. the CI job); ``quarantine``, when given, keeps boards out that this run took out.
    """

    def __init__(
        self,
        boards: Iterable[Board],
        lock_dir: str | Path | None = None,
        *,
        worker: str | None = None,
        run: str | None = None,
        label: str = "",
        quarantine: Quarantine | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.boards = tuple(boards)
        self.lock_dir = Path(lock_dir).expanduser() if lock_dir is not None else default_lock_dir()
        self.worker = worker
        self.run = run
        self.label = label
        self.quarantine = quarantine
        self.poll_interval = poll_interval

    def lock_path(self, board_id: str) -> Path:
        return self.lock_dir / f"{board_id}.lease"

    def legacy_lock_path(self, board_id: str) -> Path:
        """What older versions lock (and leave behind): locked too, where it exists."""
        return self.lock_dir / f"{board_id}.lock"

    def _lock(self, board_id: str) -> OsLock:
        return OsLock(self.lock_path(board_id), self.legacy_lock_path(board_id))

    def info_path(self, board_id: str) -> Path:
        return self.lock_dir / f"{board_id}.holder.json"

    def _ensure_dir(self) -> None:
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"cannot create the lock directory: {error.strerror or error}",
                where=str(self.lock_dir),
            ) from None

    def _quarantined(self, board_id: str) -> str | None:
        if self.quarantine is None:
            return None
        record = self.quarantine.get(board_id)
        return None if record is None else record.reason

    def _try_lock(self, board: Board) -> Lease | None:
        lock = self._lock(board.id)
        if not lock.try_acquire():
            return None
        if self._quarantined(board.id) is not None:  # taken out while we were locking it
            lock.release()
            return None
        holder = Holder.current(worker=self.worker, run=self.run, label=self.label)
        info = self.info_path(board.id)
        # The lock is what counts; without the hint, waiters just know less.
        with contextlib.suppress(OSError):
            write_json_atomic(info, dataclasses.asdict(holder))
        return Lease(board, holder, lock, info)

    def candidates(self, selector: Selector) -> tuple[Board, ...]:
        """The boards matching ``selector`` that this run has not quarantined."""
        return tuple(b for b in selector.select(self.boards) if self._quarantined(b.id) is None)

    def _check_selectable(self, selector: Selector) -> tuple[Board, ...]:
        matching = selector.select(self.boards)
        if not matching:
            raise NoMatchingBoard(selector.explain(self.boards), where="lease")
        candidates = self.candidates(selector)
        if not candidates:
            states = "; ".join(self.state(b.id).describe() for b in matching)
            raise BoardQuarantined(
                f"every board matching {selector} is quarantined in this run: {states}",
                where="lease",
            )
        return candidates

    def try_acquire(self, selector: Selector | None = None) -> Lease | None:
        """A lease on a free matching board, or None if all of them are taken right now."""
        candidates = self._check_selectable(selector or Selector())
        self._ensure_dir()
        for board in candidates:
            lease = self._try_lock(board)
            if lease is not None:
                return lease
        return None

    def acquire(self, selector: Selector | None = None, *, timeout: float) -> Lease:
        """A lease on a matching board, waiting up to ``timeout`` seconds for one to come free.

        Raises :class:`NoMatchingBoard` at once when no board can ever match,
        :class:`BoardQuarantined` when every matching board is out for this run, and
        :class:`LeaseTimeout`, naming who holds each matching board, when the time is up.
        """
        selector = selector or Selector()
        deadline = time.monotonic() + timeout
        while True:
            lease = self.try_acquire(selector)
            if lease is not None:
                return lease
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.poll_interval, remaining))
        states = "; ".join(self.state(b.id).describe() for b in selector.select(self.boards))
        raise LeaseTimeout(
            f"no board matching {selector} became free within {timeout:g} s: {states}",
            where=f"lease in {self.lock_dir}",
        )

    def state(self, board_id: str) -> LockState:
        """Whether ``board_id`` is free, who holds it, whether this run quarantined it.

        Probing takes the lock for an instant when it is free (and removes its file again); a
        competing acquirer then simply tries again on its next round.
        """
        quarantined = self._quarantined(board_id)
        if quarantined is not None:
            return LockState(board_id, free=False, quarantined=quarantined)
        if not (self.lock_path(board_id).exists() or self.legacy_lock_path(board_id).exists()):
            return LockState(board_id, free=True)
        lock = self._lock(board_id)
        if not lock.try_acquire():
            return LockState(
                board_id, free=False, holder=Holder.from_json(read_json(self.info_path(board_id)))
            )
        self.info_path(board_id).unlink(missing_ok=True)  # a killed holder's hint, now stale
        lock.release()
        return LockState(board_id, free=True)
