"""The states a virtual board can be in, as the control socket reports them (``status()["state"]``).

An enum so that a misspelt state is an error at import, not a board that never becomes "ready";
the values are the strings that clients (``SimControl.wait_ready``, ``hil sim status``) compare.
"""

from __future__ import annotations

import enum


class BoardState(str, enum.Enum):
    """Where a virtual board is in its life; ``value`` is what the control socket says."""

    OFF = "off"  # no power
    BOOTING = "booting"  # interpreter started, boot.py/main.py not done yet
    READY = "ready"  # at its REPL prompt
    HUNG = "hung"  # the hang fault froze it: only a reset or power cycle helps
    RESETTING = "resetting"  # between a hard reset and the next boot (native USB is off the bus)
    UNPLUGGED = "unplugged"  # cable pulled: no port, no power
    FLASHING = "flashing"  # the firmware slot is being written
    BOOTLOADER = "bootloader"  # UF2 bootloader: a drive instead of a serial port
    CRASHED = "crashed"  # the host gave up on it (repeated crashes or a host-side bug)

    def __str__(self) -> str:
        return self.value
