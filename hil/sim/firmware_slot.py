"""The firmware slot of a virtual board: the firmware image it boots, its flash filesystem, the
modelled write rate of flashing, and the UF2 bootloader's drive.

Why a part of its own: flashing is slow and can be cut short by a reset or power loss, and a
UF2 copy is a file appearing in a directory; the host only decides when to step and what to
boot, the slot knows the files.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from hil.errors import SimError
from hil.private_dir import write_private
from hil.sim import images
from hil.sim.stepped_flash import SteppedFlash


class FirmwareSlot(SteppedFlash):
    """``firmware.bin`` (what boots), ``flash.img`` (the LittleFS the board mounts at ``/``) and,
    in bootloader mode, ``uf2-drive/`` (the mass-storage drive of an rp2's boot ROM)."""

    def __init__(
        self,
        name: str,
        directory: Path,
        interpreter: list[str],
        flash_size: int,
        flash_rate: int,
    ) -> None:
        super().__init__(flash_rate)
        self.name = name
        self.interpreter = interpreter
        self.flash_size = flash_size
        self.firmware_path = directory / "firmware.bin"
        self.flash_path = directory / "flash.img"
        self.drive_path = directory / "uf2-drive"

    def prepare(self) -> None:
        """Create what is missing: an erased flash, and firmware of the interpreter's version."""
        if not self.flash_path.exists():
            images.create_flash(self.flash_path, self.flash_size)
        if not self.firmware_path.exists():
            version, date = images.interpreter_identity(self.interpreter)
            write_private(self.firmware_path, images.build_firmware(version, date))

    # --- flashing at the modelled rate --------------------------------------------------------

    def begin(self, image: bytes, erase: bool = False) -> None:
        """Start writing ``image``; refuses anything that is not a virtual-board image, and a
        second flash while one runs, before writing a byte. What is not an image is the
        caller's mistake (a ``ValueError``: the client reports a usage fault), not the board's."""
        try:
            images.read_firmware_info(image)
        except SimError as e:
            raise ValueError(e.what) from None
        self.start(image, erase)

    def erase_flash(self) -> None:
        """Wipe the flash filesystem; the board formats a fresh one on its next boot."""
        images.create_flash(self.flash_path, self.flash_size)

    erase_filesystem = erase_flash

    # --- UF2 bootloader -----------------------------------------------------------------------

    def open_drive(self, model: str) -> Path:
        """The boot ROM's drive appears: a directory with INFO_UF2.TXT."""
        drive = self.drive_path
        drive.mkdir(exist_ok=True)
        (drive / "INFO_UF2.TXT").write_text(
            f"UF2 Bootloader v3.0\nModel: {model}\nBoard-ID: {images.UF2_BOARD_ID}\n"
        )
        (drive / "INDEX.HTM").write_text("<html><body>virtual board bootloader</body></html>\n")
        return drive

    def take_drive_image(self) -> bool:
        """Install the first complete .uf2 copied into the drive; True when one was installed
        (the drive is gone then, as the RP2040 boot ROM reboots into the new firmware)."""
        for candidate in sorted(self.drive_path.glob("*.[uU][fF]2")):
            try:
                image = images.uf2_to_firmware(candidate.read_bytes())
            except (OSError, SimError):
                continue  # still being copied, or not for us: the ROM ignores it
            write_private(self.firmware_path, image)
            self.close_drive()
            return True
        return False

    def close_drive(self) -> None:
        shutil.rmtree(self.drive_path, ignore_errors=True)

    # --- status -------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Version, date and sha256 of the installed firmware ({} when unreadable)."""
        with contextlib.suppress(OSError, SimError):
            info = images.read_firmware_info(self.firmware_path.read_bytes())
            return {"version": info.version, "date": info.date, "sha256": info.sha256}
        return {}
