"""Flashing a virtual board at a modelled write rate: a chunk per step into a partial file, which
replaces the installed firmware only when complete.

Why one part for both board kinds: flashing is slow and a reset or power loss can cut it short;
then the old firmware must stay. The unix kind's slot and the QEMU kind's slot differ in what an
image is and what erasing means, not in how it is written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hil.errors import SimError
from hil.private_dir import open_private

#: Flashing writes a chunk this often; the chunk size follows from the modelled write rate.
STEP_INTERVAL = 0.02


class SteppedFlash:
    """The flashing half of a firmware slot; a subclass sets ``name`` and ``firmware_path``,
    checks an image before ``start``, and says what erasing is (``erase_filesystem``)."""

    name: str
    firmware_path: Path

    def __init__(self, flash_rate: int) -> None:
        self.step = max(1, int(flash_rate * STEP_INTERVAL))
        #: (bytes written, total) while a flash is in progress.
        self.progress: tuple[int, int] | None = None
        self._image = b""
        self._erase = False

    def start(self, image: bytes, erase: bool) -> None:
        """Begin writing a checked ``image``; a second flash while one runs is refused."""
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
            self.erase_filesystem()
        self.progress = None
        self._image = b""
        self.installed()
        return True

    def cancel(self) -> None:
        """A reset or power loss cut the flash short: the old firmware stays."""
        self.progress = None
        self._image = b""
        with contextlib.suppress(OSError):
            self._partial.unlink()

    def erase_filesystem(self) -> None:
        raise NotImplementedError

    def installed(self) -> None:
        """Called once a new firmware is in place (a slot may forget what it cached)."""
        return None

    @property
    def _partial(self) -> Path:
        return self.firmware_path.with_suffix(".partial")
