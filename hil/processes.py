"""Whether a process still exists, asked the same way everywhere.

Several parts keep a pid to learn later whether its process is still there: a rack lease's
holder, a labgrid place's holder, the run that started the board server, the server itself.
``os.kill(pid, 0)`` asks the kernel without sending anything, but its answer needs reading: a
``PermissionError`` means the process exists (another user's), and a zombie "exists" although
it has exited. What each answer means is decided here, once; what a caller does with "cannot
tell" (never reclaim on a guess, keep waiting) stays with the caller.
"""

from __future__ import annotations

import os
import sys

#: States in ``/proc/<pid>/stat`` of a task that has exited: zombie, dead.
_EXITED = (b"Z", b"X")


def pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` is still running on this machine (in this pid namespace).

    * True: it exists, also when it belongs to another user (``PermissionError``: the kernel
      found it, it only refuses to signal it).
    * False: there is no such process, or only its zombie. A zombie has exited and merely
      waits for its parent to collect its status: it will never release a lease or answer,
      so for every caller it is gone. It is not reaped here (only its parent may: collecting
      the status here would steal it from the ``subprocess.Popen`` that waits for it). A
      process whose main thread alone has ended (its other threads run on) shows as a zombie
      in ``/proc`` too, but is alive: told apart by its thread count.
    * None: cannot tell: ``pid`` is not one process (0 and negative numbers name process
      groups to ``kill``), or the kernel gave another error.
    """
    if pid <= 0:
        return None
    exists = _exists(pid)
    if exists is not True:
        return exists
    stat = _stat_fields(pid)
    if stat is None:  # gone meanwhile, or no /proc (not Linux): the kernel's answer stands
        return _exists(pid)
    exited = stat[0] in _EXITED
    return not (exited and _threads(stat) <= 1)


def _exists(pid: int) -> bool | None:
    if sys.platform == "win32":
        return None  # there, signal 0 is CTRL_C_EVENT: asking would interrupt the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields or None


def _threads(fields: list[bytes]) -> int:
    """The thread count (``num_threads``, the 20th field of the line); 1 where unreadable."""
    try:
        return int(fields[17])
    except (IndexError, ValueError):
        return 1
