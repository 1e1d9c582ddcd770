"""Virtual MicroPython boards: a real interpreter behind a real serial port.

``start(state_dir, count)`` starts a server process for ``count`` boards and returns once every
board has booted to its prompt; ``SimRun.stop()`` (or ``stop(state_dir)`` from another process)
ends it and everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.deadline import Deadline, wait_for
from hil.errors import ConfigError, SimError
from hil.private_dir import open_private, private_dir
from hil.processes import pid_alive
from hil.sim import inputs
from hil.sim.config import DEFAULT_KIND
from hil.sim.control import SimControl
from hil.sim.hosts import host_class
from hil.sim.states import BoardState

__all__ = [
    "SimBoard",
    "SimControl",
    "SimRun",
    "default_state_dir",
    "find",
    "running_pid",
    "start",
    "stop",
]


#: How long a server killed with SIGKILL may take to be gone.
KILL_GRACE = 5.0


def default_state_dir() -> Path:
    """``$HIL_SIM_DIR``, else a per-user directory under the runtime or temp directory."""
    env = os.environ.get("HIL_SIM_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"mpy-hil-sim-{os.getuid()}"


@dataclass(frozen=True)
class SimBoard:
    name: str
    directory: Path

    @property
    def control(self) -> SimControl:
        return SimControl(self.directory)

    @property
    def port(self) -> str:
        """The serial device path (the ``port`` symlink; a replug may move it)."""
        return self.control.port()


@dataclass
class SimRun:
    state_dir: Path
    pid: int
    boards: list[SimBoard]

    def stop(self, timeout: float = 10.0) -> None:
        _stop_pid(self.state_dir, self.pid, timeout)


def start(
    state_dir: str | Path | None = None,
    count: int = 1,
    *,
    kind: str = DEFAULT_KIND,
    sd: str | None = None,
    sd_slot: int = 2,
    baud: int | None = None,
    usb: str = "native",
    board_name: str | None = None,
    interpreter: list[str] | None = None,
    timeout: float = 60.0,
    owner_pid: int | None = None,
) -> SimRun:
    """Start ``count`` virtual boards in a new server process; return when all are ready.

    ``kind`` picks the board kind (``hil.sim.hosts.HOST_KINDS``: "unix", "microbit").
    With ``owner_pid`` the server stops by itself once that process is gone (a test run that
    was killed must not leave boards behind); without it, it runs until ``stop``.

    Every argument is checked here (a bad one is a one-line ``ConfigError``), the kind's
    ``preflight`` (if it has one) finds what is missing on the machine before a process starts,
    and a server or board that dies while starting is reported at once, with its log.
    """
    count = inputs.count(count)
    sd_size = inputs.size(sd, "sd") if sd else None
    sd_slot = inputs.integer(sd_slot, "sd_slot")
    baud = inputs.baud(baud, "baud") if baud else None
    timeout = inputs.seconds(timeout, "timeout", zero=False)
    if usb not in ("native", "uart"):
        raise ConfigError(f"usb must be 'native' or 'uart', not {usb!r}")
    host = host_class(kind)  # an unknown or missing kind is refused here, not in the server's log
    preflight = getattr(host, "preflight", None)
    if preflight is not None and not interpreter:
        try:
            preflight()
        except SimError as e:  # a part of the machine's setup is missing: the user installs it
            raise ConfigError(e.what, where=e.where) from None
    state = private_dir(state_dir if state_dir else default_state_dir())
    running = running_pid(state)
    if running:
        raise ConfigError(
            f"virtual boards already running there (pid {running}); stop them first",
            where=str(state),
        )
    cmd = [sys.executable, "-m", "hil.sim.server", "--state-dir", str(state), "--count", str(count)]
    cmd += ["--kind", kind]
    if sd_size:
        cmd += ["--sd", str(sd_size), "--sd-slot", str(sd_slot)]
    if baud:
        cmd += ["--baud", str(baud)]
    cmd += ["--usb", usb]
    if board_name:
        cmd += ["--board-name", board_name]
    if interpreter:
        cmd += ["--interpreter", *interpreter]
    if owner_pid:
        cmd += ["--owner-pid", str(owner_pid)]
    log = os.fdopen(open_private(state / "server.out", append=True), "ab")
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    finally:
        log.close()
    run = SimRun(state, proc.pid, [SimBoard(f"vb{i}", state / f"vb{i}") for i in range(count)])
    try:
        _wait_started(run, proc, Deadline(timeout))
    except BaseException:
        run.stop()
        raise
    return run


def _wait_started(run: SimRun, proc: subprocess.Popen[bytes], deadline: Deadline) -> None:
    """Wait until every board of ``run`` is at its prompt; fail at once if the server exits or
    a board crashes, naming it with the end of the server's log."""
    state = run.state_dir
    for board in run.boards:
        while True:
            if proc.poll() is not None:
                raise SimError(
                    f"server exited with {proc.returncode}: {_log_tail(state)}", where=str(state)
                )
            status = _status_or_none(board) if (board.directory / "control.sock").exists() else None
            if status is not None and status.get("state") == BoardState.READY.value:
                break
            if status is not None and status.get("state") == BoardState.CRASHED.value:
                raise SimError(
                    f"board {board.name} crashed while booting: {_log_tail(state)}",
                    where=str(state),
                )
            if deadline.expired:
                seen = status.get("state") if status else "no control socket yet"
                raise SimError(
                    f"{board.name} not ready within {deadline.seconds:g}s (state: {seen}); "
                    f"server log: {_log_tail(state)}",
                    where=str(state),
                )
            time.sleep(0.02)


def _status_or_none(board: SimBoard) -> dict[str, Any] | None:
    try:
        return SimControl(board.directory, timeout=2.0).status()
    except SimError:
        return None


def find(state_dir: str | Path | None = None) -> list[SimBoard]:
    """The boards of a running server, by their directories."""
    state = _absolute(state_dir)
    return [
        SimBoard(path.parent.name, path.parent)
        for path in sorted(state.glob("*/control.sock"), key=lambda p: _natural(p.parent.name))
    ]


def stop(state_dir: str | Path | None = None, timeout: float = 10.0) -> bool:
    """Stop the server of ``state_dir``; False when none was running."""
    state = _absolute(state_dir)
    pid = running_pid(state)
    if not pid:
        return False
    _stop_pid(state, pid, timeout)
    return True


def _absolute(state_dir: str | Path | None) -> Path:
    """The state directory as the server names it (absolute; the default when None)."""
    return Path(os.path.abspath(state_dir if state_dir else default_state_dir()))


def _natural(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return head, int(tail) if tail else -1


def running_pid(state: Path) -> int | None:
    """The pid of the server of ``state``, if one runs: a pid file alone is not proof (after a
    crash the number may belong to an unrelated process by now), its command line is."""
    state = _absolute(state)
    try:
        pid = int((state / "server.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"hil.sim.server" not in cmdline or str(state).encode() not in cmdline:
        return None
    return pid


def _stop_pid(state: Path, pid: int, timeout: float) -> None:
    """SIGTERM (clean shutdown), then SIGKILL of the whole session if it does not go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not _alive(pid), timeout, interval=0.01)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), KILL_GRACE, interval=0.01)
    (state / "server.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether the server still runs; "cannot tell" counts as running (it is then killed).
    Reaped here when it is this process's own child, so that it does not stay a zombie."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0]:
            return False
    return pid_alive(pid) is not False


def _log_tail(state: Path) -> str:
    text = ""
    for name in ("server.out", "server.log"):
        with contextlib.suppress(OSError):
            text += (state / name).read_text(errors="replace")[-600:]
    return text.strip().replace("\n", " | ")
