"""Built-in reset drivers: ``machine.reset`` (on the REPL), ``soft`` (Ctrl-D only, for a board
with no better way), ``dtr-rts`` (the esptool pulse on EN for ESP boards behind a USB-UART
bridge) and ``command`` (a lab's own program, as an argument list, never a shell line)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hil.deadline import Deadline
from hil.drivers.base import ResetDriver
from hil.drivers.command import CommandOptions, run_then_reconnect
from hil.errors import InfrastructureError

if TYPE_CHECKING:
    from hil.board import Board as BoardLink

#: How long EN is held low for an ESP chip to reset (esptool holds it 100 ms).
EN_LOW_SECONDS = 0.1


def _needs_link(driver: ResetDriver, link: BoardLink | None) -> BoardLink:
    if link is None:
        raise InfrastructureError(
            f"reset driver {driver.name!r} needs the board's serial port, which is not open",
            where=driver.entry.id,
        )
    return link


class MachineReset(ResetDriver):
    """``machine.reset()`` on the board: the default, and all a board on a plain cable offers."""

    name = "machine.reset"
    works_remotely = True

    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        _needs_link(self, link).hard_reset(timeout=timeout)


class SoftReset(ResetDriver):
    """A soft reset stands in for a hard one (a board with no reset line and no machine.reset)."""

    name = "soft"
    works_remotely = True

    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        _needs_link(self, link).soft_reset(timeout=timeout)


@dataclass(frozen=True)
class DtrRtsOptions:
    """``hold``: seconds EN is held low."""

    hold: float = EN_LOW_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.hold <= 5:
            raise ValueError("hold must be between 0 and 5 seconds")


class DtrRtsReset(ResetDriver):
    """Pulse RTS (wired to EN on ESP dev boards) with DTR (GPIO0) released: a plain reboot."""

    name = "dtr-rts"
    works_remotely = True
    options_type = DtrRtsOptions
    options: DtrRtsOptions

    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        link = _needs_link(self, link)
        port = link.transport.port
        if port is None:
            raise InfrastructureError("port closed, cannot pulse DTR/RTS", where=link.name)
        try:
            port.dtr = False  # type: ignore[attr-defined]
            port.rts = True  # type: ignore[attr-defined]
            time.sleep(self.options.hold)  # the chip needs EN low this long: a pulse, not a wait
            port.rts = False  # type: ignore[attr-defined]
        except (OSError, ValueError) as e:  # serial.SerialException is an OSError
            raise InfrastructureError(f"could not pulse DTR/RTS: {e}", where=link.name) from e
        link.repl.reconnect(timeout)


class CommandReset(ResetDriver):
    """Run a lab's command (a relay on the reset line, a debug probe's reset)."""

    name = "command"
    options_type = CommandOptions
    options: CommandOptions

    def reset(self, link: BoardLink | None, *, timeout: Deadline | float) -> None:
        """The command within the caller's ``timeout`` (and its own); the board's return
        within what is left of the caller's."""
        run_then_reconnect(self.options, link, what="reset", where=self.entry.id, timeout=timeout)
