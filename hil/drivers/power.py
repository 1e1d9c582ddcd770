"""The built-in power driver ``command``: a lab's program that power-cycles one board (a USB hub
with per-port power such as ``uhubctl``, a network power switch's CLI), as an argument list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.deadline import Deadline, as_deadline
from hil.drivers.base import PowerDriver
from hil.drivers.command import CommandOptions, run_command

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
        deadline = as_deadline(timeout)
        run_command(self.options, what="power", where=self.entry.id, deadline=deadline)
        if link is not None:
            link.repl.reconnect(deadline)
