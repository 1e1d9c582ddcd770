"""The CPU of a unix-kind virtual board: the MicroPython unix port, one process per power-on,
behind a pty that plays the board's UART.

Why a part of its own: starting the interpreter with its firmware, its link pipes and its
environment, and bridging what the unix port does differently from a board's UART (it ignores
Ctrl-C in its input while code runs; it prints a bare ``\\n``), is the one thing here that is
about *this* kind of board and nothing else.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pty
import signal
import subprocess
import termios
import time
import tty

from hil.sim import images
from hil.sim.config import BoardConfig
from hil.sim.link import FirmwareLink
from hil.sim.port import set_nonblocking

log = logging.getLogger("hil.sim")

#: Ctrl-C bytes closer together than this during one execution make a single interrupt.
CTRL_C_MERGE = 0.1
#: machine.reset_cause() values the firmware reports.
PWRON_RESET, HARD_RESET, SOFT_RESET = 1, 2, 5


def _die_with_parent() -> None:
    """In the child before exec: die when the server dies, so no interpreter is ever orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Child:
    """One power-on of the interpreter: its process, its link, and what the link told us."""

    def __init__(self, proc: subprocess.Popen[bytes], link: FirmwareLink) -> None:
        self.proc = proc
        self.link = link
        self.executing = False
        self.last_interrupt = 0.0
        #: Set by the firmware's SOFT_RESET message: the REPL mode to boot into next.
        self.soft_reset_mode: str | None = None
        self.started = time.monotonic()

    def stop(self) -> None:
        """Freeze the CPU (the hang fault)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.link.close()


class Interpreter:
    """The UART pty (kept across power-ons, like the board's pins) and how to start the CPU."""

    def __init__(
        self, config: BoardConfig, firmware_path: os.PathLike[str], flash_path: os.PathLike[str]
    ) -> None:
        self.config = config
        self.firmware_path = firmware_path
        self.flash_path = flash_path
        self.master, self.slave = pty.openpty()
        _configure_board_pty(self.slave)
        set_nonblocking(self.master)

    def spawn(self, boot: str, mode: str, cause: int, slow_boot: float = 0.0) -> Child:
        """Start one power-on: ``boot`` "cold" or "soft", REPL ``mode`` "friendly" or "raw",
        ``cause`` the machine.reset_cause() it reports."""
        link_to_host_r, link_to_host_w = os.pipe()
        link_to_fw_r, link_to_fw_w = os.pipe()
        stdin_nb = os.open(os.ttyname(self.slave), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HIL_LINK_R": str(link_to_fw_r),
            "HIL_LINK_W": str(link_to_host_w),
            "HIL_STDIN_FD": str(stdin_nb),
            "HIL_FLASH": str(self.flash_path),
            "HIL_FIRMWARE": str(self.firmware_path),
            "HIL_BOOT": boot,
            "HIL_MODE": mode,
            "HIL_BOARD": self.config.board_name,
            "HIL_MCU": self.config.mcu,
            "HIL_UID": self.config.uid,
            # machine.SDCard()'s default slot: where this board's card is wired (ESP32: 1)
            "HIL_CARD_SLOT": str(min(self.config.sd_slots, default=1)),
            "HIL_RESET_CAUSE": str(cause),
        }
        if slow_boot:
            env["HIL_BOOT_DELAY"] = str(slow_boot)
        cmd = [
            *self.config.interpreter,
            "-X",
            f"heapsize={self.config.heap}",
            str(images.BOARD_MAIN),
        ]
        host_ends = (link_to_host_r, link_to_fw_w)
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=self.slave,
                stdout=self.slave,
                stderr=self.slave,
                pass_fds=(link_to_fw_r, link_to_host_w, stdin_nb),
                env=env,
                cwd="/",
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            for fd in host_ends:
                os.close(fd)
            raise
        finally:
            for fd in (link_to_fw_r, link_to_host_w, stdin_nb):
                os.close(fd)
        set_nonblocking(link_to_host_r)
        set_nonblocking(link_to_fw_w)
        log.info("%s: %s boot (pid %d, mode %s)", self.config.name, boot, proc.pid, mode)
        return Child(proc, FirmwareLink(link_to_host_r, link_to_fw_w))

    def deliver(self, child: Child, data: bytes) -> None:
        """Bytes reach the board's UART; Ctrl-C during execution is the board's interrupt,
        unless the code turned it off (``micropython.kbd_intr(-1)``): then it is input."""
        start = 0
        while True:
            interrupts = child.executing and b"\x03" in data and catches_sigint(child.proc.pid)
            i = data.find(b"\x03", start) if interrupts else -1
            chunk = data[start:] if i < 0 else data[start:i]
            if chunk:
                self._write(chunk)
            if i < 0:
                return
            now = time.monotonic()
            if now - child.last_interrupt > CTRL_C_MERGE:
                # a burst of Ctrl-C (tools send two or three) is one interrupt, as a person's
                # double press would be two: the board's code must not be hit while it reports
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.proc.pid, signal.SIGINT)
                child.last_interrupt = now
            start = i + 1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                # the board's input buffer is full; it drops what it cannot take, like a UART
                log.warning("%s: board input overflow, %d bytes lost", self.config.name, len(view))
                return
            view = view[n:]

    def forget_output(self) -> None:
        """Forget what a dead interpreter left in its pty: a reset board says nothing more."""
        with contextlib.suppress(OSError):
            termios.tcflush(self.slave, termios.TCIOFLUSH)
        while True:
            try:
                if not os.read(self.master, 65536):
                    break
            except OSError:
                break

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def catches_sigint(pid: int) -> bool:
    """Whether process ``pid`` has a SIGINT handler: the unix port removes its handler when the
    code calls ``micropython.kbd_intr(-1)``, and a SIGINT would then kill it where a board
    would take the Ctrl-C as a byte of input."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError, IndexError):
        pass
    return False


def _configure_board_pty(fd: int) -> None:
    """Raw input, but output post-processing that turns "\\n" into "\\r\\n": a board's stdout."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] |= termios.OPOST | termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
