"""What one virtual board is: its static description, shared by every board kind.

The server builds one ``BoardConfig`` per board from its command line and hands it to the host
class of the board's ``kind``; the host writes the public part to ``<board dir>/board.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The board kind of a config that names none: the MicroPython unix port behind a pty.
DEFAULT_KIND = "unix"


@dataclass
class BoardConfig:
    """Static description of one virtual board (written to ``board.json`` in its directory)."""

    name: str
    directory: Path
    interpreter: list[str]
    #: Which host class runs the board (a key of ``hil.sim.hosts.HOST_KINDS``).
    kind: str = DEFAULT_KIND
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

    def public(self) -> dict[str, Any]:
        """What ``board.json`` says about the board (what a USB descriptor would tell a host)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "board": self.board_name,
            "mcu": self.mcu,
            "uid": self.uid,
            "usb": self.usb,
        }
