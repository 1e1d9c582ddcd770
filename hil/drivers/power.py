"""The built-in power driver ``command``: a lab's program that power-cycles one board (a USB hub
with per-port power such as ``uhubctl``, a network power switch's CLI), as an argument list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.deadline import Deadline
from hil.drivers.base import PowerDriver
from hil.drivers.command import CommandOptions, run_then_reconnect

if TYPE_CHECKING:
    from hil.board import Board as BoardLink


class CommandPower(PowerDriver):
    """Runs the command once: it must switch the board off and on again."""

    name = "command"
    options_type = CommandOptions
    options: CommandOptions

    def cycle(self, link: BoardLink | None, *, timeout: Deadline | float) -> None:
        """The command within the caller's ``timeout`` (and its own); the board's return
        within what is left of the caller's."""
        run_then_reconnect(self.options, link, what="power", where=self.entry.id, timeout=timeout)
