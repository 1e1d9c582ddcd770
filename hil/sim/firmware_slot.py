"""The firmware slot of a virtual board: the firmware image it boots, its flash filesystem, the
modelled write rate of flashing, and the UF2 bootloader's drive.

Why a part of its own: flashing is slow and can be cut short by a reset or power loss, and a
UF2 copy is a file appearing in a directory; the host only decides when to step and what to
boot, the slot knows the files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from hil.errors import SimError
from hil.private_dir import open_private, write_private
from hil.sim import images

#: Flashing writes a chunk this often; the chunk size follows from the modelled write rate.
STEP_INTERVAL = 0.02


class FirmwareSlot:
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
        self.name = name
        self.interpreter = interpreter
        self.flash_size = flash_size
        self.step = max(1, int(flash_rate * STEP_INTERVAL))
        self.firmware_path = directory / "firmware.bin"
        self.flash_path = directory / "flash.img"
        self.drive_path = directory / "uf2-drive"
        #: (bytes written, total) while a flash is in progress.
        self.progress: tuple[int, int] | None = None
        self._image = b""
        self._erase = False

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
        second flash while one runs, before writing a byte."""
        images.read_firmware_info(image)
        if self.progress is not None:
            raise SimError("the board is being flashed already", where=self.name)
        self._image = image
        self._erase = erase
        os.close(open_private(self._partial))
        self.progress = (0, len(image))

    def write_step(self) -> bool:
        """Write the next chunk; True when the image is complete and installed (and the
        filesystem erased, if asked)."""
        if self.progress is None:
            return False
        done, total = self.progress
        with os.fdopen(open_private(self._partial, append=True), "ab") as f:
            f.write(self._image[done : done + self.step])
        done = min(total, done + self.step)
        self.progress = (done, total)
        if done < total:
            return False
        os.replace(self._partial, self.firmware_path)
        if self._erase:
            self.erase_flash()
        self.progress = None
        self._image = b""
        return True

    def cancel(self) -> None:
        """A reset or power loss cut the flash short (the old firmware stays)."""
        self.progress = None
        self._image = b""

    def erase_flash(self) -> None:
        """Wipe the flash filesystem; the board formats a fresh one on its next boot."""
        images.create_flash(self.flash_path, self.flash_size)

    @property
    def _partial(self) -> Path:
        return self.firmware_path.with_suffix(".partial")

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
