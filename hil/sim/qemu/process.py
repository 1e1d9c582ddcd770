"""One QEMU micro:bit as a child process: start it with its flash, find its UART, reset, save
the flash, stop.

Why a module of its own: this is all the micro:bit kind's host needs of QEMU, and a test can use
it without a server. The child dies with its parent (``PR_SET_PDEATHSIG``), so a parent killed
with ``kill -9`` leaves no emulator running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

from hil.deadline import Deadline, as_deadline, wait_for
from hil.errors import SimError
from hil.private_dir import open_private, write_private
from hil.sim.qemu.gdb import GdbWriter
from hil.sim.qemu.image import FLASH_SIZE, PAGE_SIZE, find_qemu, segments
from hil.sim.qemu.monitor import MAX_SOCKET_PATH, Monitor

_PTY_LINE = re.compile(rb"char device redirected to (/dev/\S+) \(label serial0\)")
LOG_NAME = "qemu.log"
MONITOR_NAME = "qemu.mon"
GDB_NAME = "qemu.gdb"
UART_NAME = "qemu.uart"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent goes, so no QEMU is ever orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def command_line(
    qemu: str, loads: list[tuple[int, Path]], workdir: Path, uart: str = "pty"
) -> list[str]:
    """The QEMU command for a micro:bit V1 with each ``(address, file)`` loaded into its flash,
    halted (``-S``) until its filesystem pages have been written through the gdbstub.

    ``uart``: "pty" (QEMU names its pty in its output) or "socket" (a Unix socket in
    ``workdir`` that one client connects to: no pty polling, nothing dropped before it)."""
    cmd = [qemu, "-M", "microbit"]
    for address, path in loads:
        cmd += ["-device", f"loader,file={path},addr={address:#x}"]
    serial = "pty" if uart == "pty" else f"unix:{workdir / UART_NAME},server,nowait"
    cmd += [
        "-display",
        "none",
        "-serial",
        serial,
        "-monitor",
        f"unix:{workdir / MONITOR_NAME},server,nowait",
        "-gdb",
        f"unix:{workdir / GDB_NAME},server,nowait",
        "-S",
    ]
    return cmd


class QemuProcess:
    """A QEMU micro:bit. ``pty`` is its UART (a path), ``monitor`` its HMP client.

    ``start`` returns it halted with its flash in place; ``resume`` lets the CPU run. The gap is
    for the caller to open the UART first: QEMU drops what the firmware prints to a pty nobody
    holds (the boot banner).
    """

    def __init__(self, proc: subprocess.Popen[bytes], pty: str, workdir: Path) -> None:
        self.proc = proc
        #: The UART: a pty path, or the path of its Unix socket (``uart="socket"``).
        self.pty = pty
        self.workdir = workdir
        self.where = f"qemu pid {proc.pid}"
        self.monitor = Monitor(workdir / MONITOR_NAME, where=self.where)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(
        cls,
        firmware: bytes,
        workdir: Path,
        *,
        flash: bytes | None = None,
        qemu: str = "qemu-system-arm",
        uart: str = "pty",
        deadline: Deadline | float = 15.0,
    ) -> QemuProcess:
        """Start QEMU, halted, with the flat ``firmware`` image (its written pages, see
        ``image.segments``) and the rest of ``flash`` (a whole saved flash: the filesystem
        pages) in its flash. Its output goes to ``workdir/qemu.log``."""
        deadline = as_deadline(deadline)
        binary = find_qemu(qemu)
        workdir = workdir.resolve()
        if any(ch.isspace() or ch in ',"' for ch in str(workdir)):
            # QEMU's option syntax splits at commas; its monitor's file names end at spaces
            raise SimError(
                "QEMU's directory must not contain spaces, commas or quotes", where=str(workdir)
            )
        workdir.mkdir(parents=True, exist_ok=True)
        for name in (MONITOR_NAME, GDB_NAME, UART_NAME):
            if len(os.fsencode(workdir / name)) > MAX_SOCKET_PATH:
                raise SimError(
                    f"socket path is longer than {MAX_SOCKET_PATH} bytes: use a shorter "
                    "state directory",
                    where=str(workdir / name),
                )
            (workdir / name).unlink(missing_ok=True)
        runs = segments(firmware)
        loads = []
        for old in workdir.glob("load-*.bin"):
            old.unlink()
        for address, data in runs:
            path = workdir / f"load-{address:05x}.bin"
            write_private(path, data)
            loads.append((address, path))
        log_path = workdir / LOG_NAME
        with os.fdopen(open_private(log_path), "wb") as log:
            proc = subprocess.Popen(
                command_line(binary, loads, workdir, uart),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                preexec_fn=_die_with_parent,
            )
        try:
            pty = _wait_pty(proc, log_path, workdir, uart, deadline)
            self = cls(proc, pty, workdir)
            self._restore(runs, flash or b"", deadline)
        except BaseException:
            _kill(proc)
            raise
        return self

    def _restore(self, loaded: list[tuple[int, bytes]], flash: bytes, deadline: Deadline) -> None:
        """Write the saved pages that the loader does not cover (the CPU is still halted)."""
        covered = {
            page for start, data in loaded for page in range(start, start + len(data), PAGE_SIZE)
        }
        with GdbWriter(self.workdir / GDB_NAME, deadline, where=self.where) as gdb:
            for page in range(0, min(len(flash), FLASH_SIZE), PAGE_SIZE):
                data = flash[page : page + PAGE_SIZE]
                if page not in covered and data.count(0xFF) != len(data):
                    gdb.write_memory(page, data, deadline)

    def resume(self, deadline: Deadline | float = 5.0) -> None:
        """Let the CPU run (after ``start``, or after ``halt``)."""
        self.monitor.command("cont", deadline)

    def halt(self, deadline: Deadline | float = 5.0) -> None:
        """Freeze the CPU where it is (the hang fault; the moment power goes)."""
        self.monitor.command("stop", deadline)

    def log_tail(self, size: int = 300) -> str:
        """The end of QEMU's own output, for error messages."""
        try:
            text = (self.workdir / LOG_NAME).read_bytes()[-size:]
        except OSError:
            return ""
        return text.decode(errors="replace").strip().replace("\n", " | ")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def reset(self, deadline: Deadline | float = 5.0) -> None:
        """The reset button: ``system_reset``; the flash (and its files) stays."""
        self.monitor.command("system_reset", deadline)

    def save_flash(self, target: Path, deadline: Deadline | float = 10.0) -> None:
        """Halt the CPU and write the whole flash to ``target`` (atomically).

        The VM stays halted afterwards: this is the moment power goes away, and a CPU that ran on
        could change flash after the copy. ``memsave`` (through the CPU's view of memory), not
        ``pmemsave``: on this machine the latter reads zeros where the flash is.
        """
        deadline = as_deadline(deadline)
        partial = target.with_name(target.name + ".part").resolve()
        if any(ch.isspace() or ch == '"' for ch in str(partial)):
            raise SimError("flash save path must not contain spaces or quotes", where=str(target))
        partial.unlink(missing_ok=True)
        self.halt(deadline)
        answer = self.monitor.command(f'memsave 0 {FLASH_SIZE:#x} "{partial}"', deadline)
        size = partial.stat().st_size if partial.is_file() else -1
        if size != FLASH_SIZE:
            raise SimError(
                f"memsave wrote {size} bytes, expected {FLASH_SIZE}: {answer!r}",
                where=self.where,
            )
        os.replace(partial, target)

    def stop(self, deadline: Deadline | float = 10.0) -> None:
        """Power off: ``quit`` through the monitor, then SIGTERM, then SIGKILL, each bounded."""
        deadline = as_deadline(deadline)
        if self.alive:
            with contextlib.suppress(SimError):
                self.monitor.quit(deadline.cap(3.0))
        if not _wait_exit(self.proc, deadline.cap(2.0)):
            self.proc.terminate()
            if not _wait_exit(self.proc, deadline.cap(2.0)):
                _kill(self.proc)
        for name in (MONITOR_NAME, GDB_NAME, UART_NAME):
            (self.workdir / name).unlink(missing_ok=True)


def _wait_exit(proc: subprocess.Popen[bytes], deadline: Deadline) -> bool:
    return bool(wait_for(lambda: proc.poll() is not None, deadline, interval=0.01))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5.0)


def _wait_pty(
    proc: subprocess.Popen[bytes], log_path: Path, workdir: Path, uart: str, deadline: Deadline
) -> str:
    """Wait until QEMU's sockets exist and its output names the UART's pty (or its socket)."""
    while True:
        sockets = (workdir / MONITOR_NAME).exists() and (workdir / GDB_NAME).exists()
        if uart == "pty":
            match = _PTY_LINE.search(log_path.read_bytes())
            if match and sockets:
                return os.fsdecode(match.group(1))
        elif sockets and (workdir / UART_NAME).exists():
            return str(workdir / UART_NAME)
        if proc.poll() is not None:
            tail = log_path.read_bytes()[-300:].decode(errors="replace").strip()
            raise SimError(f"QEMU exited with {proc.returncode}: {tail}", where=str(log_path))
        if deadline.expired:
            raise SimError("QEMU did not open its UART and sockets in time", where=str(log_path))
        time.sleep(min(0.01, deadline.remaining))


def wait_prompt(fd: int, deadline: Deadline | float = 10.0, *, where: str = "qemu") -> bytes:
    """Interrupt the firmware through ``fd`` (an open pty) until it shows ``>>> ``.

    Ctrl-C is repeated every half second because bytes sent before the firmware set up its UART
    are lost. Returns what was read (the caller may drop it, like a host draining a port).
    """
    deadline = as_deadline(deadline)
    seen = b""
    next_poke = 0.0
    while not seen.endswith(b">>> "):
        if deadline.expired:
            raise SimError(
                f"the firmware did not show its prompt in time; last bytes {seen[-120:]!r}",
                where=where,
            )
        if time.monotonic() >= next_poke:
            os.write(fd, b"\x03")
            next_poke = time.monotonic() + 0.5
        ready, _, _ = select.select([fd], [], [], min(0.1, deadline.remaining))
        if ready:
            try:
                seen += os.read(fd, 4096)
            except BlockingIOError:
                continue
    # Answers to the pokes that crossed the prompt: read until the line is quiet.
    quiet = deadline.cap(2.0)
    while not quiet.expired:
        ready, _, _ = select.select([fd], [], [], min(0.2, quiet.remaining))
        if not ready:
            break
        try:
            seen += os.read(fd, 4096)
        except BlockingIOError:
            break
    return seen
