"""Whether a process is alive, on real processes: running, exited, zombie, another user's."""

from __future__ import annotations

import os
import pwd
import select
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.labgrid.holder import HolderName, holder_name, pid_space
from hil.labgrid.leases import PlaceLeaseManager
from hil.processes import pid_alive
from hil.rack import Holder

Spawn = Callable[..., subprocess.Popen[bytes]]

#: The main thread ends (``pthread_exit``; a ctypes call lets go of the GIL first) while another
#: thread runs on: ``/proc`` then shows the process as a zombie although it is alive.
MAIN_THREAD_EXITS = """
import ctypes, sys, threading, time
threading.Thread(target=lambda: time.sleep(60), daemon=True).start()
sys.stdout.write("ready\\n"); sys.stdout.flush()
ctypes.CDLL(None).pthread_exit(None)
"""


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start processes; each is killed and reaped after the test, pass or fail."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv), **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def zombie(spawn: Spawn, wait_until: Callable[..., object]) -> int:
    """The pid of a child that has exited and is not reaped (yet)."""
    child = spawn(sys.executable, "-c", "pass")
    wait_until(lambda: state_of(child.pid) == "Z", 10, "the child to exit")
    os.kill(child.pid, 0)  # the kernel still finds it: a bare kill(pid, 0) would say alive
    return child.pid


def test_this_process_and_a_running_child_are_alive(spawn: Spawn) -> None:
    assert pid_alive(os.getpid()) is True
    child = spawn(sys.executable, "-c", "import time; time.sleep(60)")
    assert pid_alive(child.pid) is True


def test_a_zombie_is_not_alive(spawn: Spawn, wait_until: Callable[..., object]) -> None:
    pid = zombie(spawn, wait_until)
    assert pid_alive(pid) is False
    assert state_of(pid) == "Z"  # and it was not reaped behind its parent's back


def test_a_reaped_child_and_a_pid_beyond_the_kernels_range_are_not_alive() -> None:
    child = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert child.returncode == 0
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert pid_alive(pid_max + 1) is False
    assert pid_alive(2**22 + 1) is False  # above any pid_max Linux allows


@pytest.mark.parametrize("pid", [0, -1, -os.getpgid(0)])
def test_numbers_that_name_process_groups_cannot_be_asked_about(pid: int) -> None:
    assert pid_alive(pid) is None  # kill(0, 0) would succeed: it signals our own group


def test_a_process_whose_main_thread_alone_ended_is_alive(
    spawn: Spawn, wait_until: Callable[..., object]
) -> None:
    child = spawn(sys.executable, "-c", MAIN_THREAD_EXITS, stdout=subprocess.PIPE)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 10)  # a deadline on the read
    assert ready and child.stdout.readline() == b"ready\n", "the child never said ready"
    wait_until(lambda: state_of(child.pid) == "Z", 10, "the main thread to end")
    fields = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()
    assert fields[0] == "Z" and int(fields[17]) >= 2  # zombie leader, a thread still running
    assert pid_alive(child.pid) is True


def test_another_users_process_is_alive() -> None:
    """kill(pid, 0) refused (EPERM) still means the process exists: asked about init."""
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):
            os.kill(1, 0)
        assert pid_alive(1) is True
        return
    # root may signal anyone: a forked child asks as nobody (the interpreter is already loaded)
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                os.kill(1, 0)
                refused = "no"
            except PermissionError:
                refused = "refused"
            os.write(write_end, f"{refused} {pid_alive(1)}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as answer:
            said = answer.read()
    finally:
        os.waitpid(pid, 0)
    assert said == b"refused True"


def test_a_rack_holder_that_is_a_zombie_is_gone(
    spawn: Spawn, wait_until: Callable[..., object]
) -> None:
    here = socket.gethostname()
    assert Holder(pid=os.getpid(), host=here, since=0.0).is_alive() is True
    assert Holder(pid=zombie(spawn, wait_until), host=here, since=0.0).is_alive() is False
    assert Holder(pid=os.getpid(), host=here + "-other", since=0.0).is_alive() is None
    assert Holder(pid=0, host=here, since=0.0).is_alive() is None  # no one process: no guess


def test_a_labgrid_holder_that_is_a_zombie_is_gone_one_that_cannot_be_asked_is_kept(
    spawn: Spawn, wait_until: Callable[..., object]
) -> None:
    def holder(pid: int) -> HolderName:
        return HolderName(socket.gethostname(), pid, pid_space(), "run", "main")

    assert holder(os.getpid()).is_alive() is True
    assert holder(zombie(spawn, wait_until)).is_alive() is False
    assert holder(0).is_alive() is True  # cannot tell: never reclaimed on a guess


def test_labgrid_places_are_let_go_when_the_runs_owner_is_a_zombie_no_coordinator_asked(
    spawn: Spawn, wait_until: Callable[..., object]
) -> None:
    """Only the owner check runs: no coordinator is needed (none is given)."""

    def owner_gone(pid: int | None) -> bool:
        holder = holder_name(run="run", worker=None)
        manager = PlaceLeaseManager(None, (), holder, quarantine=None, owner_pid=pid)  # type: ignore[arg-type]
        return manager._owner_gone()

    assert owner_gone(zombie(spawn, wait_until)) is True
    assert owner_gone(spawn(sys.executable, "-c", "import time; time.sleep(60)").pid) is False
    assert owner_gone(None) is False and owner_gone(os.getpid()) is False
    assert owner_gone(0) is False  # cannot tell: the places are kept
