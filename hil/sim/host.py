"""Host side of a virtual board: the wires, the power switch and the card slot around a real
MicroPython interpreter.

One ``BoardHost`` owns, for one board:

* the *port*: a pty pair whose slave is the board's serial device, published as a symlink
  ``<board dir>/port`` (removed while unplugged, so opening it fails like a vanished USB device);
* the *child*: the unix port running ``firmware/board_main.py`` in a second pty (its line
  discipline cooks ``\\n`` into ``\\r\\n`` like a board's stdout), restarted on every reset;
* the *link*: two pipes on which the firmware reports state (executing, idle, booted, soft reset,
  machine.reset) and asks for SD card blocks and injected faults;
* the relay between port and child, with the UART speed (``baud``) and faults applied on the wire.

Everything runs in the single-threaded event loop of ``hil.sim.server``: handlers never block.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import logging
import os
import pty
import random
import shutil
import signal
import subprocess
import termios
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import SimError
from hil.sim import images

log = logging.getLogger("hil.sim")

#: Stop reading the child while this much output waits for the port (a board blocks on a full
#: USB buffer; nothing is lost).
TX_HIGH_WATER = 256 * 1024
CARD_BLOCK = 512
#: Ctrl-C bytes closer together than this during one execution make a single interrupt.
CTRL_C_MERGE = 0.1
#: A resetting board's USB device leaves the bus this long after the reset (bytes it sent
#: before the reset still reach the host, as they do from a real board).
USB_DETACH_DELAY = 0.05

PWRON_RESET, HARD_RESET, SOFT_RESET = 1, 2, 5


def _die_with_parent() -> None:
    """In the child before exec: die when the server dies, so no interpreter is ever orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


@dataclass
class BoardConfig:
    """Static description of one virtual board (written to ``board.json`` in its directory)."""

    name: str
    directory: Path
    interpreter: list[str]
    board_name: str = "HIL virtual board"
    mcu: str = "unix"
    uid: str = ""
    #: "native": the port vanishes on reset (rp2, ESP32-S3 native USB); "uart": a USB-serial
    #: bridge whose port stays while the board reboots (ESP32 DevKit).
    usb: str = "native"
    baud: int | None = None
    heap: str = "2M"
    reset_gap: float = 0.3
    flash_size: int = 2 * 1024 * 1024
    #: Card slots: slot number -> card size in bytes (0: an empty slot).
    sd_slots: dict[int, int] = field(default_factory=dict)
    #: Modelled flash write rate of the firmware slot, bytes per second.
    flash_rate: int = 400_000


@dataclass
class Faults:
    stall_until: float = 0.0
    drop: int = 0
    slow_boot: float = 0.0
    raw_paste: str = ""  # "", "refuse", "old" or "abort N"
    hang: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "stall": max(0.0, self.stall_until - time.monotonic()),
            "drop": self.drop,
            "slow_boot": self.slow_boot,
            "raw_paste": self.raw_paste,
            "hang": self.hang,
        }


class Wire:
    """One direction of the board's serial link: a queue whose bytes arrive no faster than a
    UART at ``baud`` would carry them (each byte 10 bit times after the one before it).

    Without a baud rate bytes pass at once. Bytes are handed over in batches (whatever has fully
    "arrived" when the loop looks), so the loop does not wake per byte, but no byte is early:
    an idle line does not save up credit for a later burst.
    """

    def __init__(self, baud: int | None) -> None:
        self.queue = bytearray()
        self._segments: deque[tuple[float, int]] = deque()  # (first byte starts, byte count)
        self.set_baud(baud)

    def set_baud(self, baud: int | None) -> None:
        self.baud = baud
        self.rate = baud / 10 if baud else None
        self._free_at = 0.0
        self._segments.clear()
        if self.rate is not None and self.queue:
            self._segments.append((time.monotonic(), len(self.queue)))
            self._free_at = time.monotonic() + len(self.queue) / self.rate

    def __len__(self) -> int:
        return len(self.queue)

    def put(self, data: bytes) -> None:
        if not data:
            return
        self.queue += data
        if self.rate is not None:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + len(data) / self.rate
            self._segments.append((start, len(data)))

    def ready(self, now: float) -> int:
        """How many bytes at the head have fully crossed the line by ``now``."""
        if self.rate is None:
            return len(self.queue)
        count = 0
        for start, size in self._segments:
            done = min(size, int((now - start) * self.rate)) if now > start else 0
            count += done
            if done < size:
                break
        return count

    def take(self, n: int) -> bytes:
        data = bytes(self.queue[:n])
        del self.queue[:n]
        while n and self._segments:
            start, size = self._segments[0]
            if n >= size:
                self._segments.popleft()
                n -= size
            else:
                assert self.rate is not None
                self._segments[0] = (start + n / self.rate, size - n)
                n = 0
        return data

    def wait(self, now: float) -> float:
        """Seconds until the next byte has arrived (at least a millisecond: batches, not bytes)."""
        if not self.queue:
            return 0.0
        if self.rate is None or not self._segments:
            return 0.001
        start, _ = self._segments[0]
        return max(0.001, start + 1 / self.rate - now)

    def clear(self) -> None:
        self.queue.clear()
        self._segments.clear()
        self._free_at = 0.0


class Child:
    """One power-on of the interpreter: process, link pipes, and the parsed link stream."""

    def __init__(self, proc: subprocess.Popen, link_r: int, link_w: int) -> None:
        self.proc = proc
        self.link_r = link_r  # events and requests from the firmware
        self.link_w = link_w  # replies to the firmware
        self.link_in = bytearray()
        self.link_out = bytearray()
        self.executing = False
        self.last_interrupt = 0.0
        self.soft_reset_mode: str | None = None
        self.started = time.monotonic()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for fd in (self.link_r, self.link_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class BoardHost:
    """Everything physical about one virtual board. See the module docstring."""

    def __init__(self, config: BoardConfig, schedule: Callable[[float, Callable[[], None]], None]):
        self.config = config
        self.dir = config.directory
        self.schedule = schedule
        self.port_master: int | None = None
        self.port_slave: int | None = None
        self.port_index = 0
        self.port_link = self.dir / "port"
        self.child_master, child_slave = pty.openpty()
        self.child_slave = child_slave
        _configure_child_pty(child_slave)
        _set_nonblocking(self.child_master)
        self.child: Child | None = None
        self.state = "off"
        self.mode = "friendly"
        self.rx = Wire(config.baud)  # from the port, on its way to the board
        self.tx = Wire(config.baud)  # from the board, on its way to the port
        self.faults = Faults()
        self.powered = False
        self.plugged = False
        self.counters = {"boots": 0, "soft_resets": 0, "hard_resets": 0, "flashes": 0, "crashes": 0}
        self.cards: dict[int, Path | None] = {}
        self.card_fds: dict[int, int] = {}
        self.firmware_path = self.dir / "firmware.bin"
        self.flash_path = self.dir / "flash.img"
        self.flash_progress: tuple[int, int] | None = None
        self._crash_times: list[float] = []
        self.last_output = b""  # what the board said last, for crash reports
        #: Bumped by every power/plug action: a timer of an older action must not act any more.
        self.epoch = 0

    # --- set-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create missing images: erased flash, default firmware, formatted cards."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.flash_path.exists():
            images.create_flash(self.flash_path, self.config.flash_size)
        if not self.firmware_path.exists():
            version, date = images.interpreter_identity(self.config.interpreter)
            self.firmware_path.write_bytes(images.build_firmware(version, date))
        for slot, size in self.config.sd_slots.items():
            card = self.dir / f"card{slot}.img"
            if size and not card.exists():
                images.create_card(self.config.interpreter, card, size)
            self.cards[slot] = card if size else None
        counters = self.dir / "counters.json"
        if counters.exists():
            with contextlib.suppress(ValueError):
                self.counters.update(json.loads(counters.read_text()))
        (self.dir / "board.json").write_text(
            json.dumps(
                {
                    "name": self.config.name,
                    "board": self.config.board_name,
                    "mcu": self.config.mcu,
                    "uid": self.config.uid,
                    "usb": self.config.usb,
                },
                indent=2,
            )
        )

    def power_on(self) -> None:
        self.powered = True
        if not self.plugged:
            self.plug()
        self.boot("cold", "friendly", PWRON_RESET)

    def shutdown(self) -> None:
        shutil.rmtree(self.drive_path, ignore_errors=True)
        self.kill_child()
        self.unplug()
        for slot in list(self.card_fds):
            self._close_card(slot)
        for fd in (self.child_master, self.child_slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._save_counters()

    # --- the port (USB) ---------------------------------------------------------------------

    def plug(self, new_path: bool = False) -> None:
        """The board appears on the host: a fresh pty, published under the port path."""
        if self.plugged:
            return
        master, slave = pty.openpty()
        tty.setraw(slave)
        _set_nonblocking(master)
        self.port_master, self.port_slave = master, slave
        if new_path:
            self.port_index += 1
            self.port_link = self.dir / f"port-{self.port_index}"
        tmp = self.port_link.with_name(self.port_link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port_link)
        self.plugged = True
        self.tx.clear()
        self.rx.clear()

    def unplug(self) -> None:
        """The board's USB device vanishes: the path goes away, open handles see a hang-up."""
        if not self.plugged:
            return
        with contextlib.suppress(FileNotFoundError):
            self.port_link.unlink()
        for fd in (self.port_master, self.port_slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.port_master = self.port_slave = None
        self.plugged = False
        self.rx.clear()
        self.tx.clear()

    # --- power, reset, boot -----------------------------------------------------------------

    def boot(self, kind: str, mode: str, cause: int) -> None:
        """Start one power-on of the interpreter (``kind``: cold or soft)."""
        if self.child is not None:
            self.kill_child()
        self.mode = mode
        link_to_host_r, link_to_host_w = os.pipe()
        link_to_fw_r, link_to_fw_w = os.pipe()
        stdin_nb = os.open(os.ttyname(self.child_slave), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HIL_LINK_R": str(link_to_fw_r),
            "HIL_LINK_W": str(link_to_host_w),
            "HIL_STDIN_FD": str(stdin_nb),
            "HIL_FLASH": str(self.flash_path),
            "HIL_FIRMWARE": str(self.firmware_path),
            "HIL_BOOT": kind,
            "HIL_MODE": mode,
            "HIL_BOARD": self.config.board_name,
            "HIL_MCU": self.config.mcu,
            "HIL_UID": self.config.uid,
            "HIL_RESET_CAUSE": str(cause),
        }
        if self.faults.slow_boot:
            env["HIL_BOOT_DELAY"] = str(self.faults.slow_boot)
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
                stdin=self.child_slave,
                stdout=self.child_slave,
                stderr=self.child_slave,
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
        _set_nonblocking(link_to_host_r)
        _set_nonblocking(link_to_fw_w)
        self.child = Child(proc, link_to_host_r, link_to_fw_w)
        self.state = "booting"
        self.counters["boots"] += 1
        if self.faults.hang:
            os.kill(proc.pid, signal.SIGSTOP)
            self.state = "hung"
        log.info("%s: %s boot (pid %d, mode %s)", self.config.name, kind, proc.pid, mode)

    def kill_child(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child = None
        self._drain_child_output()

    def _drain_child_output(self) -> None:
        """Forget what the dead interpreter left in its pty: a reset board says nothing more."""
        with contextlib.suppress(OSError):
            termios.tcflush(self.child_slave, termios.TCIOFLUSH)
        while True:
            try:
                if not os.read(self.child_master, 65536):
                    break
            except OSError:
                break

    def crash(self) -> None:
        """The host side of this board failed: stop its interpreter and say so in its state."""
        with contextlib.suppress(Exception):
            self.kill_child()
        self.state = "crashed"

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Schedule ``action`` unless a newer power/plug action overtakes it."""
        epoch = self.epoch

        def run() -> None:
            if self.epoch == epoch:
                action()

        self.schedule(delay, run)

    def hard_reset(self) -> None:
        """Reset button / machine.reset(): native USB drops off the bus for a moment."""
        self.epoch += 1
        self.flash_progress = None  # a flash in progress is cut short
        shutil.rmtree(self.drive_path, ignore_errors=True)
        self._flush_before_reset()
        self.counters["hard_resets"] += 1
        self.faults.hang = False
        self.kill_child()
        self.state = "resetting"
        if self.config.usb == "native" and self.plugged:
            self.later(USB_DETACH_DELAY, self.unplug)
            self.later(USB_DETACH_DELAY + self.config.reset_gap, self._after_reset_gap)
        else:
            self.boot("cold", "friendly", HARD_RESET)

    def _after_reset_gap(self) -> None:
        if self.powered:
            self.plug()
            self.boot("cold", "friendly", HARD_RESET)

    def _flush_before_reset(self) -> None:
        """What the board sent before it reset has left it: deliver it, ignoring the throttle."""
        if self.child is None or self.port_master is None:
            return
        while True:
            before = len(self.tx)
            self.on_child_readable()
            if len(self.tx) == before:
                break
        with contextlib.suppress(OSError):
            written = os.write(self.port_master, self.tx.queue)
            self.tx.take(written)

    def power(self, on: bool) -> None:
        self.epoch += 1
        self.flash_progress = None  # a flash in progress is cut short
        if on and not self.powered:
            self.faults.hang = False
            self.power_on()
        elif not on and self.powered:
            self.powered = False
            self.kill_child()
            self.state = "off"
            if self.config.usb == "native":
                self.unplug()

    def usb_unplug(self) -> None:
        """Pull the cable: a USB-powered board loses its port and its power."""
        self.epoch += 1
        self.flash_progress = None  # a flash in progress is cut short
        self.powered = False
        self.kill_child()
        self.unplug()
        self.state = "unplugged"

    def usb_replug(self, new_path: bool = False) -> None:
        self.epoch += 1
        self.plug(new_path=new_path)
        self.powered = True
        self.faults.hang = False
        self.boot("cold", "friendly", PWRON_RESET)

    # --- the event loop's interface ---------------------------------------------------------

    def readers(self) -> dict[int, Callable[[], None]]:
        fds: dict[int, Callable[[], None]] = {}
        if self.port_master is not None:
            fds[self.port_master] = self.on_port_readable
        if self.child is not None:
            fds[self.child.link_r] = self.on_link_readable
            if len(self.tx) < TX_HIGH_WATER:
                fds[self.child_master] = self.on_child_readable
        return fds

    def writers(self) -> dict[int, Callable[[], None]]:
        fds: dict[int, Callable[[], None]] = {}
        if self.child is not None and self.child.link_out:
            fds[self.child.link_w] = self._flush_link
        return fds

    def on_port_readable(self) -> None:
        try:
            data = os.read(self.port_master, 65536)  # type: ignore[arg-type]
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        if self.powered and self.state not in ("off", "unplugged"):
            self.rx.put(data)

    def on_child_readable(self) -> None:
        try:
            data = os.read(self.child_master, 65536)
        except OSError:
            return
        if self.faults.hang:
            return
        self.last_output = (self.last_output + data)[-512:]
        if self.faults.drop and data:
            cut = min(self.faults.drop, len(data))
            self.faults.drop -= cut
            data = data[cut:]
        if self.plugged:
            self.tx.put(data)

    def on_link_readable(self) -> None:
        child = self.child
        assert child is not None
        try:
            data = os.read(child.link_r, 65536)
        except BlockingIOError:
            return
        if not data:
            self._child_exited()
            return
        child.link_in += data
        while self.child is child and self._handle_link_message(child):
            pass

    def pump(self, now: float) -> float | None:
        """Move queued bytes along both wires; returns seconds until it wants to run again."""
        if now < self.faults.stall_until:
            return self.faults.stall_until - now
        waits: list[float] = []
        if self.rx and self.child is not None and self.state != "hung":
            n = self.rx.ready(now)
            if n:
                self._deliver_to_board(self.rx.take(n))
            if self.rx:
                waits.append(self.rx.wait(now))
        if self.tx and self.port_master is not None:
            n = self.tx.ready(now)
            if n:
                try:
                    written = os.write(self.port_master, self.tx.queue[:n])
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EIO):
                        raise
                    written = 0
                self.tx.take(written)
                if written < n:
                    waits.append(0.005)  # the reader is behind: the host's buffer is full
            if self.tx:
                waits.append(self.tx.wait(now))
        return min(waits) if waits else None

    # --- wire details -----------------------------------------------------------------------

    def _deliver_to_board(self, data: bytes) -> None:
        """Bytes reach the board's UART; Ctrl-C during execution is the board's interrupt."""
        child = self.child
        assert child is not None
        start = 0
        while True:
            i = data.find(b"\x03", start) if child.executing else -1
            chunk = data[start:] if i < 0 else data[start:i]
            if chunk:
                self._write_child(chunk)
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

    def _write_child(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.child_master, view)
            except BlockingIOError:
                # the board's input buffer is full; it drops what it cannot take, like a UART
                log.warning("%s: board input overflow, %d bytes lost", self.config.name, len(view))
                return
            view = view[n:]

    def _flush_link(self) -> None:
        child = self.child
        if child is None or not child.link_out:
            return
        try:
            n = os.write(child.link_w, child.link_out)
        except BlockingIOError:
            return
        except BrokenPipeError:
            child.link_out.clear()
            return
        del child.link_out[:n]

    def _reply(self, payload: bytes = b"", error: tuple[int, str] | None = None) -> None:
        child = self.child
        assert child is not None
        if error is not None:
            child.link_out += f"ERR {error[0]} {error[1]}\n".encode()
        else:
            child.link_out += f"OK {len(payload)}\n".encode() + payload
        self._flush_link()

    def _handle_link_message(self, child: Child) -> bool:
        """Handle one complete message from the link buffer; False when more bytes are needed."""
        end = child.link_in.find(b"\n")
        if end < 0:
            return False
        words = child.link_in[:end].decode(errors="replace").split()
        payload_size = 0
        if words[:2] == ["C", "W"]:
            payload_size = int(words[4]) * CARD_BLOCK
            if len(child.link_in) < end + 1 + payload_size:
                return False
        payload = bytes(child.link_in[end + 1 : end + 1 + payload_size])
        del child.link_in[: end + 1 + payload_size]
        if not words:
            return True
        kind = words[0]
        if kind == "E":
            child.executing = True
            child.last_interrupt = 0.0
        elif kind == "I":
            child.executing = False
        elif kind == "B":
            self.state = "ready"
        elif kind == "S":
            child.soft_reset_mode = words[1] if len(words) > 1 else "friendly"
        elif kind == "H":
            self.hard_reset()
        elif kind == "L":
            self.enter_bootloader()
        elif kind == "Q":
            self._reply(self.faults.raw_paste.encode())
        elif kind == "C":
            self._card_request(words[1], int(words[2]), int(words[3]), int(words[4]), payload)
        return True

    def _child_exited(self) -> None:
        child = self.child
        assert child is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)
        mode = child.soft_reset_mode
        # What the interpreter wrote before exiting is still in its pty: relay all of it first.
        # Input it did not read stays queued for the next interpreter, like a UART's buffer.
        while True:
            before = len(self.tx)
            self.on_child_readable()
            if len(self.tx) == before:
                break
        child.kill()
        self.child = None
        if mode is not None:
            self.counters["soft_resets"] += 1
            self.boot("soft", mode, SOFT_RESET)
            return
        self.counters["crashes"] += 1
        now = time.monotonic()
        self._crash_times = [t for t in self._crash_times if now - t < 10] + [now]
        log.error(
            "%s: interpreter exited unexpectedly (code %s); last output: %r",
            self.config.name,
            child.proc.returncode,
            self.last_output[-300:],
        )
        if len(self._crash_times) >= 3:
            self.state = "crashed"
            return
        self.boot("cold", "friendly", HARD_RESET)

    # --- SD card slot -----------------------------------------------------------------------

    def _card_request(self, op: str, slot: int, block: int, count: int, data: bytes) -> None:
        card = self.cards.get(slot)
        if card is None:
            # no card: the driver's init times out, as an ESP32's does
            self._reply(error=(errno.EBUSY if op == "I" else errno.EIO, ""))
            return
        fd = self.card_fds.get(slot)
        if fd is None:
            fd = self.card_fds[slot] = os.open(card, os.O_RDWR)
        size = os.fstat(fd).st_size
        if op == "I":
            self._reply(str(size // CARD_BLOCK).encode())
        elif block + count > size // CARD_BLOCK:
            self._reply(error=(errno.EIO, ""))
        elif op == "R":
            self._reply(os.pread(fd, count * CARD_BLOCK, block * CARD_BLOCK))
        elif op == "W":
            os.pwrite(fd, data, block * CARD_BLOCK)
            self._reply()
        else:
            self._reply(error=(errno.EINVAL, ""))

    def _close_card(self, slot: int) -> None:
        fd = self.card_fds.pop(slot, None)
        if fd is not None:
            os.close(fd)

    def card_eject(self, slot: int) -> None:
        self._require_slot(slot)
        self._close_card(slot)
        self.cards[slot] = None

    def card_insert(self, slot: int, image: str | None = None, size: int | None = None) -> Path:
        """Insert ``image`` (a FAT image file), or the slot's own card, or a new blank one."""
        self._require_slot(slot)
        self._close_card(slot)
        card = Path(image) if image else self.dir / f"card{slot}.img"
        if not card.exists():
            images.create_card(self.config.interpreter, card, size or 16 * 1024 * 1024)
        self.cards[slot] = card
        return card

    def _require_slot(self, slot: int) -> None:
        if slot not in self.config.sd_slots:
            raise ValueError(f"board {self.config.name} has no SD slot {slot}")

    # --- faults -----------------------------------------------------------------------------

    def set_fault(self, kind: str, params: dict[str, Any]) -> None:
        if kind == "stall":
            self.faults.stall_until = time.monotonic() + float(params.get("seconds", 1.0))
        elif kind == "hang":
            self.faults.hang = True
            if self.child is not None:
                os.kill(self.child.proc.pid, signal.SIGSTOP)
                self.state = "hung"
        elif kind == "noise":
            count = int(params.get("count", 32))
            seed = params.get("seed")
            rng = random.Random(seed)
            self.tx.put(bytes(rng.randrange(256) for _ in range(count)))
        elif kind == "drop":
            self.faults.drop = int(params.get("count", 1))
        elif kind == "slow_boot":
            self.faults.slow_boot = float(params.get("seconds", 2.0))
        elif kind == "no_raw_paste":
            # "refuse": firmware without raw-paste (R\x00); "old": firmware older than
            # raw-paste, which takes Ctrl-E A Ctrl-A as a plain raw REPL reset
            style = params.get("style", "refuse")
            if style not in ("refuse", "old"):
                raise ValueError(f"no_raw_paste style must be 'refuse' or 'old', not {style!r}")
            self.faults.raw_paste = style
        elif kind == "raw_paste_abort":
            self.faults.raw_paste = f"abort {int(params.get('after', 64))}"
        else:
            raise ValueError(
                f"unknown fault {kind!r} (stall, hang, noise, drop, slow_boot, no_raw_paste, "
                "raw_paste_abort)"
            )

    def clear_faults(self) -> None:
        hung = self.faults.hang
        self.faults = Faults()
        if hung and self.child is not None:
            os.kill(self.child.proc.pid, signal.SIGCONT)
            self.state = "ready"

    def set_baud(self, baud: int | None) -> None:
        self.rx.set_baud(baud)
        self.tx.set_baud(baud)

    # --- firmware slot ----------------------------------------------------------------------

    def flash(self, image: bytes, erase: bool = False) -> None:
        """Write a firmware image at the modelled rate, then boot it (as after a flasher's reset).

        Refuses anything that is not a virtual-board image before writing a byte.
        """
        images.read_firmware_info(image)
        if self.flash_progress is not None:
            raise SimError("the board is being flashed already", where=self.config.name)
        self.epoch += 1
        self.kill_child()
        self.state = "flashing"
        tmp = self.firmware_path.with_suffix(".partial")
        tmp.write_bytes(b"")
        self.flash_progress = (0, len(image))
        step = max(1, int(self.config.flash_rate * 0.02))

        def write_chunk() -> None:
            done, total = self.flash_progress or (0, len(image))
            with open(tmp, "ab") as f:
                f.write(image[done : done + step])
            done = min(total, done + step)
            self.flash_progress = (done, total)
            if done < total:
                self.later(0.02, write_chunk)
                return
            os.replace(tmp, self.firmware_path)
            if erase:
                self.erase_flash()
            self.counters["flashes"] += 1
            self._save_counters()
            self.flash_progress = None
            if self.powered:
                self.boot("cold", "friendly", HARD_RESET)
            else:
                self.state = "off"

        self.schedule(0.0, write_chunk)

    @property
    def drive_path(self) -> Path:
        return self.dir / "uf2-drive"

    def enter_bootloader(self) -> None:
        """machine.bootloader() on an rp2: the serial port goes, a UF2 drive comes.

        The drive is a directory with INFO_UF2.TXT; a complete .uf2 copied into it becomes the
        firmware, the drive goes away and the board boots it (as the RP2040 boot ROM does).
        """
        self.epoch += 1
        self._flush_before_reset()
        self.kill_child()
        self.state = "bootloader"
        drive = self.drive_path
        drive.mkdir(exist_ok=True)
        (drive / "INFO_UF2.TXT").write_text(
            "UF2 Bootloader v3.0\n"
            f"Model: {self.config.board_name}\n"
            f"Board-ID: {images.UF2_BOARD_ID}\n"
        )
        (drive / "INDEX.HTM").write_text("<html><body>virtual board bootloader</body></html>\n")
        self.later(USB_DETACH_DELAY, self.unplug)
        self.later(0.05, self._watch_drive)

    def _watch_drive(self) -> None:
        if self.state != "bootloader":
            return
        for candidate in sorted(self.drive_path.glob("*.[uU][fF]2")):
            try:
                image = images.uf2_to_firmware(candidate.read_bytes())
            except (OSError, SimError):
                continue  # still being copied, or not for us: the ROM ignores it
            self.firmware_path.write_bytes(image)
            self.counters["flashes"] += 1
            self._save_counters()
            shutil.rmtree(self.drive_path, ignore_errors=True)
            self.plug()
            self.boot("cold", "friendly", PWRON_RESET)
            return
        self.later(0.05, self._watch_drive)

    def erase_flash(self) -> None:
        """Wipe the flash filesystem; the board formats a fresh one on its next boot."""
        running = self.child is not None
        if running:
            self.kill_child()
        images.create_flash(self.flash_path, self.config.flash_size)
        if running:
            self.boot("cold", "friendly", HARD_RESET)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        firmware: dict[str, Any] = {}
        with contextlib.suppress(OSError, SimError):
            info = images.read_firmware_info(self.firmware_path.read_bytes())
            firmware = {"version": info.version, "date": info.date, "sha256": info.sha256}
        return {
            "name": self.config.name,
            "state": self.state,
            "mode": self.mode,
            "port": str(self.port_link),
            "tty": os.ttyname(self.port_slave) if self.port_slave is not None else None,
            "plugged": self.plugged,
            "powered": self.powered,
            "pid": self.child.proc.pid if self.child else None,
            "executing": bool(self.child and self.child.executing),
            "baud": self.rx.baud,
            "usb": self.config.usb,
            "uid": self.config.uid,
            "board": self.config.board_name,
            "mcu": self.config.mcu,
            "firmware": firmware,
            "flash_progress": self.flash_progress,
            "faults": self.faults.describe(),
            "cards": {
                str(slot): {"present": card is not None, "image": str(card) if card else None}
                for slot, card in self.cards.items()
            },
            **self.counters,
        }

    def _save_counters(self) -> None:
        with contextlib.suppress(OSError):
            (self.dir / "counters.json").write_text(json.dumps(self.counters))


def _configure_child_pty(fd: int) -> None:
    """Raw input, but output post-processing that turns "\\n" into "\\r\\n": a board's stdout."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] |= termios.OPOST | termios.ONLCR
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
