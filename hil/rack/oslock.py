"""One board's OS lock, whose file exists only while somebody holds it.

A lease must die with its holder, even by ``kill -9``: only a kernel lock does that (``flock`` on
POSIX). ``filelock`` gives one, but on POSIX it leaves its file behind for ever, and removing that
file safely needs what it does not offer on every version we support: the locked descriptor, to
check after locking that the path still names the file we locked. So on POSIX the lock is ours;
elsewhere it is ``filelock``'s.

The protocol, on ``<board>.lease``: only the holder removes the file, before it unlocks. Whoever
locks a file checks afterwards that the path still names it; if the holder removed it in between,
that lock is on a file nobody else can find, so it is dropped and the path opened again. Two
holders can therefore never hold locks on two different files of one path.

Older mpy-hil (and ``filelock`` on POSIX) locked ``<board>.lock`` and never removed it; such a
process must not be able to take a board we hold, nor we one it holds. So a holder also locks
``<board>.lock`` when that file exists, without ever creating or removing it: a lock directory
that an older version has used has those files, and both kinds of process then exclude each
other. (Only an older version's *first* lease of a board, in a directory it never used, can
race a new holder; mixed versions should share a directory that the older one has used.)
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from hil.errors import ConfigError

#: How often to re-open when the file keeps being removed under us; each loss means another
#: process held the lock in between, so giving up (as "held right now") is the right answer.
_REOPENS = 3

#: errno values saying that the filesystem has no working ``flock`` (some network filesystems).
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


class OsLock:
    """An exclusive, non-blocking OS lock on ``path`` (and on ``legacy``, the name older versions
    lock, when it exists). Each instance is its own holder, so two instances in one process (two
    threads, two managers) contend like two processes do."""

    def __init__(self, path: Path, legacy: Path | None = None) -> None:
        self.path = path
        self.legacy = legacy
        self._fd: int | None = None
        self._legacy_fd: int | None = None
        self._pid = os.getpid()
        # where flock is missing, filelock on the name older versions used there too
        self._fallback = None if _has_flock() else _filelock(legacy or path)

    @property
    def held(self) -> bool:
        if self._fallback is not None:
            return bool(self._fallback.is_locked)
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; False if somebody holds it."""
        if self.held:
            return True
        if self._fallback is not None:
            return _try_filelock(self._fallback, self.path)
        if not self._take_own():
            return False
        if self.legacy is not None and not self._take_legacy(self.legacy):
            self.release()  # an older version holds the board
            return False
        self._pid = os.getpid()
        return True

    def _take_own(self) -> bool:
        for _ in range(_REOPENS):
            fd = self._open(self.path, create=True)
            assert fd is not None
            try:
                if not _flock(fd, self.path):
                    return False
                if _still_at(self.path, fd):
                    self._fd, fd = fd, None
                    return True
                # Its last holder removed the file after we opened it: open the path anew.
            finally:
                if fd is not None:
                    os.close(fd)
        return False

    def _take_legacy(self, legacy: Path) -> bool:
        fd = self._open(legacy, create=False)
        if fd is None:
            return True  # no older version ever leased this board here
        try:
            locked = _flock(fd, legacy)
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            os.close(fd)
            return False
        self._legacy_fd = fd
        return True

    def release(self) -> None:
        """Remove the file (while still holding it, so no one else's file goes), then unlock.
        Calling it again does nothing."""
        if self._fallback is not None:
            if self._fallback.is_locked:
                self._fallback.release(force=True)
            return
        legacy_fd, self._legacy_fd = self._legacy_fd, None
        if legacy_fd is not None:
            os.close(legacy_fd)  # never removed: older versions never check what they locked
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.getpid() != self._pid:
            # A forked child's copy: the lock (one per open file, shared with the parent) and
            # its file stay the parent's.
            os.close(fd)
            return
        try:
            # In a shared sticky directory another user's file cannot be removed: it stays,
            # which costs nothing, since every holder checks what it locked.
            with contextlib.suppress(OSError):
                if _still_at(self.path, fd):
                    self.path.unlink()
        finally:
            os.close(fd)  # closing the last descriptor unlocks

    def __del__(self) -> None:
        # A lease dropped without release must not hold its board until the process ends.
        with contextlib.suppress(Exception):
            self.release()

    def _open(self, path: Path, *, create: bool) -> int | None:
        return _open(path, create=create)


def _open(path: Path, *, create: bool) -> int | None:
    """A descriptor to lock ``path`` through (None: it does not exist and ``create`` is off)."""
    flags = _OPEN_FLAGS | (os.O_CREAT if create else 0)
    try:
        try:
            return os.open(path, flags | os.O_RDWR, 0o666)
        except PermissionError:
            # Another user's lock file in a shared lock_dir: flock needs no write access.
            return os.open(path, flags | os.O_RDONLY, 0o666)
    except FileNotFoundError:
        if create:
            raise ConfigError("cannot create the lock file", where=str(path)) from None
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot open the lock file: {error.strerror or error} (it belongs to another "
            "user? everyone sharing the boards needs read access to lock_dir's files)",
            where=str(path),
        ) from None


def _flock(fd: int, path: Path) -> bool:
    """Lock ``fd`` exclusively if nobody holds its file; False if somebody does."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in _NO_FLOCK:
            raise ConfigError(
                "the lock directory does not support OS file locks (a network filesystem?); "
                "choose a local one",
                where=str(path.parent),
            ) from None
        raise
    return True


def _still_at(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (its holder may have removed it)."""
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return os.path.samestat(current, os.fstat(fd))


def _has_flock() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


def _filelock(path: Path):  # type: ignore[no-untyped-def]  # filelock's class differs by version
    import filelock

    return filelock.FileLock(str(path), thread_local=False)


def _try_filelock(lock, path: Path) -> bool:  # type: ignore[no-untyped-def]
    import filelock

    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    if isinstance(lock, filelock.SoftFileLock):
        # A lock file that outlives a killed holder is no lease: refuse it.
        lock.release(force=True)
        raise ConfigError(
            "the lock directory does not support OS file locks; choose a local one",
            where=str(path.parent),
        )
    return True
