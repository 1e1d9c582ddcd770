"""Bringing a board back: reset it hard, or power-cycle it, through the drivers its rack entry
names (``reset``, ``power``; see :mod:`hil.drivers`).

The harness calls these when a board stops answering. Only the drivers know how a board is wired
(a control socket of a virtual board, a command for a USB hub, DTR/RTS lines); this module and
the REPL layers above never do.
"""

from __future__ import annotations

from typing import Any

from hil import drivers
from hil.board import Board as BoardLink
from hil.drivers.registry import Role
from hil.rack import Board as RackBoard
from hil.rack import DriverRef


def build(role: Role, ref: DriverRef, entry: RackBoard) -> Any:
    """The ``role`` driver that ``ref`` names, built for ``entry`` with its options checked."""
    where = f"{entry.id}: {role} {ref.name}"
    return drivers.lookup(role, ref.name, where=where).build(entry, ref.options, where=where)


def hard_reset(entry: RackBoard, link: BoardLink | None, *, timeout: float = 20.0) -> None:
    """Reset ``entry`` hard as its rack entry says; with a ``link``, back in the raw REPL."""
    build("reset", entry.reset, entry).reset(link, timeout=timeout)


def power_cycle(entry: RackBoard, link: BoardLink | None, *, timeout: float = 30.0) -> bool:
    """Power-cycle ``entry`` if its rack entry says how; False when it cannot be done."""
    if entry.power is None:
        return False
    build("power", entry.power, entry).cycle(link, timeout=timeout)
    return True
