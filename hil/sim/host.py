"""Host side of a unix-kind virtual board: the power switch, the reset button and the cable
around a real MicroPython interpreter, composed of parts with one job each.

One ``BoardHost`` owns, for one board:

* ``port`` (``hil.sim.port.Port``): the pty whose slave is the board's serial device, published
  as ``<board dir>/port`` while plugged in;
* ``cpu`` (``hil.sim.interpreter.Interpreter``): the unix port running ``firmware/board_main.py``
  in a pty of its own, one process (``child``) per power-on;
* ``relay`` (``hil.sim.wire.Relay``): the wire between the two, at the UART's speed, with the
  ``faults`` (``hil.sim.faults.FaultInjector``) applied to bytes in flight;
* the firmware link (``hil.sim.link``), on which the firmware reports what it does and asks for
  ``cards`` (``hil.sim.card_slot.CardSlots``) blocks and injected faults;
* ``firmware`` (``hil.sim.firmware_slot.FirmwareSlot``): the image it boots, its flash
  filesystem, flashing and the UF2 bootloader.

What is left here is the board's life: power, resets, boots and crashes, in ``BoardState``s.
Everything runs in the single-threaded event loop of ``hil.sim.server``: handlers never block.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.private_dir import write_private
from hil.sim.card_slot import CardSlots
from hil.sim.config import BoardConfig
from hil.sim.faults import ALL_FAULTS, FaultInjector
from hil.sim.firmware import linkcodes as code
from hil.sim.firmware_slot import FirmwareSlot
from hil.sim.hosts import Schedule
from hil.sim.interpreter import HARD_RESET, PWRON_RESET, SOFT_RESET, Child, Interpreter
from hil.sim.link import Message
from hil.sim.port import Port
from hil.sim.states import BoardState
from hil.sim.stepped_flash import STEP_INTERVAL
from hil.sim.wire import Relay

__all__ = ["BoardConfig", "BoardHost"]

log = logging.getLogger("hil.sim")

#: A resetting board's USB device leaves the bus this long after the reset (bytes it sent
#: before the reset still reach the host, as they do from a real board).
USB_DETACH_DELAY = 0.05
#: How often the UF2 bootloader looks for a copied image.
DRIVE_POLL = 0.05
#: This many unexpected interpreter exits within CRASH_WINDOW seconds: the board is crashed.
CRASH_LIMIT, CRASH_WINDOW = 3, 10.0


class BoardHost:
    """Everything physical about one unix-kind virtual board. See the module docstring."""

    @staticmethod
    def preflight() -> None:
        """The MicroPython unix port is installed (the ``sim`` extra), else one usage line,
        before a server starts (not a crash in its log)."""
        from hil.extras import require_sim

        require_sim("unix", otherwise="")

    def __init__(self, config: BoardConfig, schedule: Schedule) -> None:
        self.config = config
        self.dir = config.directory
        self.schedule = schedule
        self.port = Port(self.dir)
        self.faults = FaultInjector(ALL_FAULTS, kind=config.kind)
        self.relay = Relay(config.baud, self.faults)
        self.cards = CardSlots(config.name, self.dir, config.sd_slots, config.interpreter)
        self.firmware = FirmwareSlot(
            config.name, self.dir, config.interpreter, config.flash_size, config.flash_rate
        )
        self.cpu = Interpreter(config, self.firmware.firmware_path, self.firmware.flash_path)
        self.child: Child | None = None
        self.state = BoardState.OFF
        self.mode = "friendly"
        self.powered = False
        #: The power switch (hil.sim power on/off) and the USB cable: the board has power only
        #: with both, so switching on does not plug a pulled cable back in.
        self.switch_on = True
        self.cable_in = True
        self.counters = {"boots": 0, "soft_resets": 0, "hard_resets": 0, "flashes": 0, "crashes": 0}
        self._crash_times: list[float] = []
        #: Bumped by every power/plug action: a timer of an older action must not act any more.
        self.epoch = 0

    # --- set-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create missing images: erased flash, default firmware, formatted cards."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.firmware.prepare()
        self.cards.prepare()
        counters = self.dir / "counters.json"
        if counters.exists():
            with contextlib.suppress(ValueError):
                self.counters.update(json.loads(counters.read_text()))
        write_private(self.dir / "board.json", json.dumps(self.config.public(), indent=2))

    def power_on(self) -> None:
        self.powered = True
        self.plug()
        self.boot("cold", "friendly", PWRON_RESET)

    def shutdown(self) -> None:
        self.firmware.close_drive()
        self.kill_child()
        self.unplug()
        self.cards.close()
        self.cpu.close()
        self._save_counters()

    # --- the cable --------------------------------------------------------------------------

    def plug(self, new_path: bool = False) -> None:
        if not self.port.plugged:
            self.port.plug(new_path)
            self.relay.clear()

    def unplug(self) -> None:
        if self.port.plugged:
            self.port.unplug()
            self.relay.clear()

    # --- power, reset, boot -----------------------------------------------------------------

    def boot(self, kind: str, mode: str, cause: int) -> None:
        """Start one power-on of the interpreter (``kind``: cold or soft)."""
        if self.child is not None:
            self.kill_child()
        self.mode = mode
        self.child = self.cpu.spawn(kind, mode, cause, self.faults.slow_boot)
        self.state = BoardState.BOOTING
        self.counters["boots"] += 1
        if self.faults.hang:
            self.child.stop()
            self.state = BoardState.HUNG

    def kill_child(self) -> None:
        if self.child is not None:
            self.child.kill()
            self.child = None
        self.cpu.forget_output()

    def crash(self) -> None:
        """The host side of this board failed: stop its interpreter and say so in its state."""
        with contextlib.suppress(Exception):
            self.kill_child()
        self.state = BoardState.CRASHED

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Schedule ``action`` unless a newer power/plug action overtakes it."""
        epoch = self.epoch

        def run() -> None:
            if self.epoch == epoch:
                action()

        self.schedule(delay, run)

    def hard_reset(self) -> None:
        """Reset button / machine.reset(): native USB drops off the bus for a moment. Without
        power the button does nothing."""
        if not self.powered:
            return
        self.epoch += 1
        self.firmware.cancel()  # a flash in progress is cut short
        self.firmware.close_drive()
        self._flush_before_reset()
        self.counters["hard_resets"] += 1
        self.faults.hang = False
        self.kill_child()
        self.state = BoardState.RESETTING
        if self.config.usb == "native" and self.port.plugged:
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
        if self.child is None or not self.port.plugged:
            return
        self.relay.drain_board(self.cpu.master)
        self.relay.flush_to_port(self.port.write)

    def power(self, on: bool) -> None:
        self.switch_on = on
        if not self.cable_in:
            return  # the cable is pulled: the switch alone changes nothing the host can see
        self.epoch += 1
        self.firmware.cancel()
        if on and not self.powered:
            self.faults.hang = False
            self.power_on()
        elif not on and self.powered:
            self.powered = False
            self.kill_child()
            self.state = BoardState.OFF
            if self.config.usb == "native":
                self.unplug()

    def usb_unplug(self) -> None:
        """Pull the cable: a USB-powered board loses its port and its power."""
        self.epoch += 1
        self.firmware.cancel()
        self.cable_in = False
        self.powered = False
        self.kill_child()
        self.unplug()
        self.state = BoardState.UNPLUGGED

    def usb_replug(self, new_path: bool = False) -> None:
        """Plug the cable back in: the board boots if its power switch is on; with the switch
        off a USB-serial bridge (``usb="uart"``) still shows its port, native USB does not."""
        self.epoch += 1
        self.cable_in = True
        if not self.switch_on:
            if self.config.usb != "native":
                self.plug(new_path=new_path)
            self.state = BoardState.OFF
            return
        self.plug(new_path=new_path)
        self.powered = True
        self.faults.hang = False
        self.boot("cold", "friendly", PWRON_RESET)

    # --- the event loop's interface ---------------------------------------------------------

    def readers(self) -> dict[int, Callable[[], None]]:
        fds: dict[int, Callable[[], None]] = {}
        if self.port.master is not None:
            fds[self.port.master] = self.on_port_readable
        if self.child is not None:
            fds[self.child.link.read_fd] = self.on_link_readable
            if self.relay.wants_board_output():
                fds[self.cpu.master] = self.on_board_output
        return fds

    def writers(self) -> dict[int, Callable[[], None]]:
        if self.child is not None and self.child.link.outbuf:
            return {self.child.link.write_fd: self.child.link.flush}
        return {}

    def on_port_readable(self) -> None:
        data = self.port.read()
        if self.powered and self.state not in (BoardState.OFF, BoardState.UNPLUGGED):
            self.relay.from_port(data)

    def on_board_output(self) -> None:
        self.relay.read_board(self.cpu.master, self.port.plugged)

    def pump(self, now: float) -> float | None:
        """Move queued bytes along both wires; returns seconds until it wants to run again."""
        child = self.child
        deliver = None
        if child is not None and self.state is not BoardState.HUNG:

            def deliver(data: bytes) -> None:
                self.cpu.deliver(child, data)

        return self.relay.pump(now, deliver, self.port.write if self.port.plugged else None)

    # --- the firmware link ------------------------------------------------------------------

    def on_link_readable(self) -> None:
        child = self.child
        assert child is not None
        if not child.link.read():
            self._child_exited(child)
            return
        while self.child is child:
            message = child.link.next_message()
            if message is None:
                return
            self._on_message(child, message)

    def _on_message(self, child: Child, message: Message) -> None:
        kind = message.code
        if kind == code.EXECUTING:
            child.executing = True
            child.last_interrupt = 0.0
        elif kind == code.IDLE:
            child.executing = False
        elif kind == code.BOOTED:
            self.state = BoardState.READY
        elif kind == code.SOFT_RESET:
            child.soft_reset_mode = message.args[0] if message.args else "friendly"
        elif kind == code.HARD_RESET:
            self.hard_reset()
        elif kind == code.BOOTLOADER:
            self.enter_bootloader()
        elif kind == code.QUERY:
            child.link.reply(self.faults.raw_paste.encode())
        elif kind == code.CARD:
            op = message.args[0] if message.args else ""
            try:
                numbers = [message.int_arg(i) for i in (1, 2, 3)]
                payload = self.cards.request(op, *numbers, data=message.payload)
            except OSError as e:
                child.link.reply_error(e.errno or errno.EIO, e.strerror or "")
            else:
                child.link.reply(payload)
        elif kind:
            log.warning("%s: unknown link message %r", self.config.name, message)

    def _child_exited(self, child: Child) -> None:
        mode = child.soft_reset_mode
        # What the interpreter wrote before exiting is still in its pty: relay all of it first.
        # Input it did not read stays queued for the next interpreter, like a UART's buffer.
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)
        self.relay.drain_board(self.cpu.master, self.port.plugged)
        child.kill()
        self.child = None
        if mode is not None:
            self.counters["soft_resets"] += 1
            self.boot("soft", mode, SOFT_RESET)
            return
        self.counters["crashes"] += 1
        now = time.monotonic()
        self._crash_times = [t for t in self._crash_times if now - t < CRASH_WINDOW] + [now]
        log.error(
            "%s: interpreter exited unexpectedly (code %s); last output: %r",
            self.config.name,
            child.proc.returncode,
            self.relay.last_output[-300:],
        )
        if len(self._crash_times) >= CRASH_LIMIT:
            self.state = BoardState.CRASHED
            return
        self.boot("cold", "friendly", HARD_RESET)

    # --- card slot, faults, firmware slot ---------------------------------------------------

    def card_eject(self, slot: int | None) -> None:
        self.cards.eject(slot)

    def card_insert(self, slot: int | None, image: str | None, size: int | None) -> Path:
        return self.cards.insert(slot, image, size)

    def set_fault(self, kind: str, params: dict[str, Any]) -> None:
        self.relay.inject_noise(self.faults.inject(kind, params))
        if kind == "hang" and self.child is not None:
            self.child.stop()
            self.state = BoardState.HUNG

    def clear_faults(self) -> None:
        if self.faults.clear() and self.child is not None:
            self.child.resume()
            self.state = BoardState.READY

    def set_baud(self, baud: int | None) -> None:
        self.relay.set_baud(baud)

    def flash(self, image: bytes, erase: bool = False) -> None:
        """Write a firmware image at the modelled rate, then boot it (as after a flasher's reset).

        Refuses anything that is not a virtual-board image before writing a byte.
        """
        self.firmware.begin(image, erase)
        self.epoch += 1
        self.kill_child()
        self.state = BoardState.FLASHING

        def step() -> None:
            if not self.firmware.write_step():
                self.later(STEP_INTERVAL, step)
                return
            self.counters["flashes"] += 1
            self._save_counters()
            if self.powered:
                self.boot("cold", "friendly", HARD_RESET)
            else:
                self.state = BoardState.OFF

        self.later(0.0, step)

    def enter_bootloader(self) -> Path:
        """machine.bootloader() on an rp2: the serial port goes, a UF2 drive comes.

        A complete .uf2 copied into the drive becomes the firmware, the drive goes away and the
        board boots it (as the RP2040 boot ROM does).
        """
        self.epoch += 1
        self._flush_before_reset()
        self.kill_child()
        self.state = BoardState.BOOTLOADER
        drive = self.firmware.open_drive(self.config.board_name)
        self.later(USB_DETACH_DELAY, self.unplug)
        self.later(DRIVE_POLL, self._watch_drive)
        return drive

    def _watch_drive(self) -> None:
        if self.state is not BoardState.BOOTLOADER:
            return
        if not self.firmware.take_drive_image():
            self.later(DRIVE_POLL, self._watch_drive)
            return
        self.counters["flashes"] += 1
        self._save_counters()
        self.plug()
        self.boot("cold", "friendly", PWRON_RESET)

    def erase_flash(self) -> None:
        """Wipe the flash filesystem; a running board reboots and formats a fresh one."""
        running = self.child is not None
        if running:
            self.kill_child()
        self.firmware.erase_flash()
        if running:
            self.boot("cold", "friendly", HARD_RESET)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "kind": self.config.kind,
            "state": self.state.value,
            "mode": self.mode,
            "port": str(self.port.link),
            "tty": self.port.tty,
            "plugged": self.port.plugged,
            "powered": self.powered,
            "pid": self.child.proc.pid if self.child else None,
            "executing": bool(self.child and self.child.executing),
            "baud": self.relay.baud,
            "usb": self.config.usb,
            "uid": self.config.uid,
            "board": self.config.board_name,
            "mcu": self.config.mcu,
            "firmware": self.firmware.info(),
            "flash_progress": self.firmware.progress,
            "faults": self.faults.describe(),
            "cards": self.cards.status(),
            **self.counters,
        }

    def _save_counters(self) -> None:
        with contextlib.suppress(OSError):
            write_private(self.dir / "counters.json", json.dumps(self.counters))
