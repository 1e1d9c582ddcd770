"""The virtual boards' drivers, registered like any lab's: a ``sim:<board-state-dir>`` port, and
reset, power and flashing through the board's control socket (what a USB power switch and a
programming cable are for a real board).

This module is the ``sim`` entry point of the ``mpy_hil.drivers`` group; importing it registers
the drivers by name only, so validating a rack that names them imports nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.drivers import PortDriver, PowerDriver, ResetDriver, register

if TYPE_CHECKING:
    from hil.board import Board as BoardLink
    from hil.sim.control import SimControl


class SimPort(PortDriver):
    """``sim:<board-state-dir>``: a running virtual board, asked where its serial port is now."""

    scheme = "sim"
    value_is_path = True

    def resolve(self, *, where: str = "") -> str:
        return self.control().port()

    def present(self) -> bool | None:
        from hil.errors import HilError

        try:
            return Path(self.resolve()).exists()
        except HilError:
            return False

    def control(self) -> SimControl:
        from hil.sim.control import SimControl

        return SimControl(self.value)

    def labgrid_resource(self, *, speed: int, where: str = "") -> tuple[str, dict[str, Any]]:
        if self.control().status().get("usb") == "native":
            logging.getLogger("hil").warning(
                "%s: a native-USB virtual board gets a new port on every power cycle, which an "
                "exported RawSerialPort cannot follow: start it with --usb uart",
                where,
            )
        return super().labgrid_resource(speed=speed, where=where)

    def power_switch(self) -> SimPowerSwitch:
        return SimPowerSwitch(self.control())


class SimPowerSwitch:
    """The virtual board's power, through its control socket, as a ``PowerSwitch``."""

    def __init__(self, control: SimControl) -> None:
        self.control = control

    def power(self, on: bool) -> None:
        self.control.power(on)

    def powered(self) -> bool:
        """The board's own word on its power, not what was last set."""
        return bool(self.control.status()["powered"])


def control_of(entry: object) -> SimControl:
    """The control socket of the virtual board behind a rack entry whose port is ``sim:``."""
    from hil.errors import InfrastructureError
    from hil.rack.ports import port_driver

    spec = entry.port_spec  # type: ignore[attr-defined]
    driver = None if spec.kind in ("device", "url") else port_driver(spec)
    if not isinstance(driver, SimPort):
        raise InfrastructureError(
            f"this driver needs a virtual board's 'sim:' port, not {entry.port!r}",  # type: ignore[attr-defined]
            where=entry.id,  # type: ignore[attr-defined]
        )
    return driver.control()


class SimReset(ResetDriver):
    """The virtual board's reset button."""

    name = "sim"

    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        control_of(self.entry).reset()
        if link is not None:
            link.repl.reconnect(timeout)


class SimPower(PowerDriver):
    """The virtual board's power switch: off, then on."""

    name = "sim"

    def cycle(self, link: BoardLink | None, *, timeout: float) -> None:
        control = control_of(self.entry)
        control.power(False)
        control.power(True)
        if link is not None:
            link.repl.reconnect(timeout)


register("port", "sim", SimPort)
register("reset", "sim", SimReset)
register("power", "sim", SimPower)
register("flasher", "sim", "hil.sim.flasher:SimFlasher")
