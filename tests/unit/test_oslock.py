"""The lease lock's file exists only while held, and removing it never lets two holders in.

The interleavings that matter (a waiter opens the file, its holder removes it, a third process
creates a new one) are driven step by step here, in one process: each :class:`OsLock` is its own
holder, exactly as two processes would be.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hil.rack.oslock import OsLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX protocol")


def test_the_file_exists_only_while_held(tmp_path: Path) -> None:
    lock = OsLock(tmp_path / "b0.lock")
    assert lock.try_acquire()
    assert lock.path.exists()
    lock.release()
    assert not lock.path.exists()
    lock.release()  # again: nothing
    assert list(tmp_path.iterdir()) == []


def test_a_held_lock_keeps_the_others_out(tmp_path: Path) -> None:
    first, second = OsLock(tmp_path / "b0.lock"), OsLock(tmp_path / "b0.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    assert not first.try_acquire()
    second.release()


def test_a_killed_holders_file_is_free_and_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "b0.lock"
    path.write_text("")  # what kill -9 of a holder leaves: a file nobody locks
    lock = OsLock(path)
    assert lock.try_acquire()
    lock.release()
    assert not path.exists()


class _OpensThen(OsLock):
    """A waiter that opens the lock file, and then, before it locks it, lets ``meanwhile`` run:
    the window in which another holder may remove the file."""

    def __init__(self, path: Path, meanwhile) -> None:  # type: ignore[no-untyped-def]
        super().__init__(path)
        self._meanwhile = meanwhile

    def _open(self, path: Path, *, create: bool) -> int | None:
        fd = super()._open(path, create=create)
        meanwhile, self._meanwhile = self._meanwhile, lambda: None
        meanwhile()
        return fd


def test_a_file_removed_between_open_and_lock_is_never_held(tmp_path: Path) -> None:
    path = tmp_path / "b0.lock"
    holder, third = OsLock(path), OsLock(path)
    assert holder.try_acquire()

    def holder_leaves_and_a_third_comes() -> None:
        holder.release()  # removes the file the waiter has open
        assert third.try_acquire()  # a new file at the same path

    waiter = _OpensThen(path, holder_leaves_and_a_third_comes)
    # The waiter's flock on the removed file succeeds, but that file is nobody's lock any more;
    # the path's file is the third's, held: so the board is not the waiter's.
    assert not waiter.try_acquire()
    assert third.held and not waiter.held
    third.release()
    assert waiter.try_acquire()
    waiter.release()


def test_a_file_removed_between_open_and_lock_is_taken_anew_when_free(tmp_path: Path) -> None:
    path = tmp_path / "b0.lock"
    holder = OsLock(path)
    assert holder.try_acquire()
    waiter = _OpensThen(path, holder.release)
    assert waiter.try_acquire()
    assert path.exists() and OsLock(path).try_acquire() is False  # the waiter's, on the new file
    waiter.release()
    assert not path.exists()


def test_a_lock_dropped_without_release_is_freed(tmp_path: Path) -> None:
    path = tmp_path / "b0.lock"
    lock = OsLock(path)
    assert lock.try_acquire()
    del lock
    other = OsLock(path)
    assert other.try_acquire()
    other.release()


def test_a_forked_childs_copy_never_frees_the_parents_lock(tmp_path: Path) -> None:
    import os

    path = tmp_path / "b0.lock"
    lock = OsLock(path)
    assert lock.try_acquire()
    pid = os.fork()
    if pid == 0:  # the child drops its copy, as a child that exits normally would
        try:
            lock.release()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert path.exists()  # still the parent's file...
    assert not OsLock(path).try_acquire()  # ...and still held
    lock.release()
    assert not path.exists()


def _old_version_holds(path: Path) -> int:
    """What an older mpy-hil (filelock on POSIX) does: open, creating, and flock; never remove."""
    import fcntl
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_board_an_older_version_holds_is_not_taken(tmp_path: Path) -> None:
    import os

    legacy = tmp_path / "b0.lock"
    old = _old_version_holds(legacy)
    lock = OsLock(tmp_path / "b0.lease", legacy)
    assert not lock.try_acquire()
    assert not (tmp_path / "b0.lease").exists()  # given back whole
    os.close(old)  # the older run ends; its file stays, as it always did
    assert lock.try_acquire()
    lock.release()
    assert legacy.exists() and not (tmp_path / "b0.lease").exists()


def test_an_older_version_cannot_take_a_board_we_hold(tmp_path: Path) -> None:
    import fcntl
    import os

    legacy = tmp_path / "b0.lock"
    legacy.write_text("")  # a directory an older version has used
    lock = OsLock(tmp_path / "b0.lease", legacy)
    assert lock.try_acquire()
    fd = os.open(legacy, os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    lock.release()


def test_no_older_versions_file_is_ever_created(tmp_path: Path) -> None:
    lock = OsLock(tmp_path / "b0.lease", tmp_path / "b0.lock")
    assert lock.try_acquire()
    lock.release()
    assert list(tmp_path.iterdir()) == []


OLD_AND_NEW = r"""
import fcntl, os, sys, time
from pathlib import Path
from hil.rack.oslock import OsLock

directory, mode, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
legacy, marker = directory / "b0.lock", directory / "in-use"
end, doubles, holds = time.monotonic() + seconds, 0, 0
while time.monotonic() < end:
    if mode == "new":
        lock = OsLock(directory / "b0.lease", legacy)
        if not lock.try_acquire():
            continue
        release = lock.release
    else:
        fd = os.open(legacy, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        release = lambda fd=fd: os.close(fd)
    holds += 1
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.unlink(marker)
    except FileExistsError:
        doubles += 1
    release()
print(holds, doubles)
"""


def test_new_and_older_processes_never_hold_one_board_together(tmp_path: Path) -> None:
    """Real processes, two of ours and one as an older version was, for a second: each holds
    the board in turn and checks, with an exclusive marker file, that nobody else does."""
    import subprocess
    import sys

    (tmp_path / "b0.lock").write_text("")  # the older version has used this directory
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OLD_AND_NEW, str(tmp_path), mode, "1.0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in ("new", "new", "old")
    ]
    try:
        counts = [child.communicate(timeout=60)[0].split() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    holds = [int(c[0]) for c in counts]
    doubles = [int(c[1]) for c in counts]
    assert all(holds), holds  # each of them held it: they really competed
    assert doubles == [0, 0, 0]
