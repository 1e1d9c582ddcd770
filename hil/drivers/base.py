"""The interfaces of the drivers a rack entry names: where a board's port is, how to reset it
hard, how to power-cycle it. (Flashers have theirs in :mod:`hil.flash.base`.)

Each interface is one small class with one job, in the spirit of labgrid's drivers: the harness
asks for "reset this board hard" and the rack entry decides whether that is ``machine.reset()``
on the REPL, a DTR/RTS pulse, a USB hub command or a virtual board's control socket.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hil.drivers.options import NoOptions, parse_options

if TYPE_CHECKING:
    from hil.board import Board as BoardLink
    from hil.rack.inventory import Board as RackBoard


class PowerSwitch(Protocol):
    """A board's power as a switch (on, off, and its state), which ``hil lab exporter`` serves
    to other hosts as a labgrid ``rest`` power port."""

    def power(self, on: bool) -> None: ...

    def powered(self) -> bool: ...


class PortDriver(ABC):
    """Resolves a port of the form ``<scheme>:<value>`` to what ``serial_for_url`` opens.

    Resolve as late as possible (right before opening, again after a hard reset): a board found
    by its USB serial number, a virtual board or a remote place may come back elsewhere.
    """

    scheme: ClassVar[str]
    #: Whether ``value`` is a file system path, taken relative to the rack file when relative.
    value_is_path: ClassVar[bool] = False

    def __init__(self, value: str) -> None:
        self.value = value
        self.check()

    def check(self) -> None:
        """Refuse a malformed value at rack load time (raise ``ValueError`` saying why)."""
        return None

    @abstractmethod
    def resolve(self, *, where: str = "") -> str:
        """The device path or URL to open now; ``LinkError`` when the board is not there."""

    def present(self) -> bool | None:
        """Whether the port is there right now, for status tables; ``None``: cannot tell."""
        return None

    def labgrid_resource(self, *, speed: int, where: str = "") -> tuple[str, dict[str, Any]]:
        """How ``hil lab exporter`` publishes this port from its host: a labgrid resource class
        and its arguments. By default the device the port resolves to now (labgrid wants the
        device itself, not a symlink to it); a scheme that can follow a board across
        re-enumeration (a USB serial number) says so instead."""
        return "RawSerialPort", {
            "port": os.path.realpath(self.resolve(where=where)),
            "speed": speed,
        }

    def power_switch(self) -> PowerSwitch | None:
        """The board's power switch, when the port's scheme comes with one (a virtual board's
        control socket); None for a plain serial port."""
        return None


class _EntryDriver(ABC):
    """A driver built for one rack entry, with its options validated from the rack's table."""

    #: Whether the driver still works when the board is on another host (a labgrid place): it
    #: acts through the REPL or the serial line's own signals. A command, a USB hub or a
    #: control socket acts on the board's own host only, so a place leaves such a driver out.
    works_remotely: ClassVar[bool] = False

    name: ClassVar[str]
    options_type: ClassVar[type] = NoOptions

    def __init__(self, entry: RackBoard, options: Any) -> None:
        self.entry = entry
        self.options = options

    @classmethod
    def build(cls, entry: RackBoard, options: Mapping[str, Any], *, where: str = "") -> Any:
        """The driver for ``entry``; a bad option is a one-line ``ConfigError``."""
        return cls(entry, parse_options(cls.options_type, options, where=where or entry.id))


class ResetDriver(_EntryDriver):
    """Resets a board hard (its program and peripherals start over, unlike a soft reset)."""

    @abstractmethod
    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        """Reset the board; with a ``link``, return once it is back in the raw REPL."""


class PowerDriver(_EntryDriver):
    """Switches a board's power: the last resort when a board stops answering."""

    @abstractmethod
    def cycle(self, link: BoardLink | None, *, timeout: float) -> None:
        """Power the board off and on; with a ``link``, return once it answers again."""
