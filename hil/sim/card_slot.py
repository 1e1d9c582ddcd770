"""The SD card slots of a virtual board: FAT images on the host that the board's
``machine.SDCard`` reads and writes block by block over the firmware link.

Why images on the host: a test can pull the card and look (mtools, pyfatfs) at what the board
wrote, and eject/insert/replace it while the board runs, as a person would with a real card.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

from hil.sim import images
from hil.sim.firmware import linkcodes as code

#: Size of a card inserted with no image and no size given.
DEFAULT_CARD_SIZE = 16 * 1024 * 1024


class CardSlots:
    """The slots of one board: slot number -> the card in it (an image path) or None (empty)."""

    def __init__(
        self, board: str, directory: Path, slots: dict[int, int], interpreter: list[str]
    ) -> None:
        self.board = board
        self.dir = directory
        self.sizes = dict(slots)  # slot -> size of the slot's own card (0: none)
        self.interpreter = interpreter
        self.cards: dict[int, Path | None] = {}
        self._fds: dict[int, int] = {}

    def prepare(self) -> None:
        """Create each slot's own card (formatted FAT) unless it exists; insert it."""
        for slot, size in self.sizes.items():
            card = self._own_card(slot)
            if size and not card.exists():
                images.create_card(self.interpreter, card, size)
            self.cards[slot] = card if size else None

    def slot(self, slot: int | None) -> int:
        """``slot``, or the board's first slot when None; a slot the board lacks is refused."""
        if slot is None:
            if not self.sizes:
                raise ValueError(f"board {self.board} has no SD slot")
            return next(iter(self.sizes))
        if slot not in self.sizes:
            raise ValueError(f"board {self.board} has no SD slot {slot}")
        return slot

    # --- the board's side: block requests ----------------------------------------------------

    def request(self, op: str, slot: int, block: int, count: int, data: bytes = b"") -> bytes:
        """Answer the board's card request (``linkcodes.CARD_*``); an OSError is what the board's
        driver sees (no card: EBUSY at init, as an ESP32's init times out; EIO otherwise)."""
        card = self.cards.get(slot)
        if card is None:
            raise OSError(errno.EBUSY if op == code.CARD_INIT else errno.EIO, "")
        fd = self._fds.get(slot)
        if fd is None:
            fd = self._fds[slot] = os.open(card, os.O_RDWR)
        blocks = os.fstat(fd).st_size // code.CARD_BLOCK
        if op == code.CARD_INIT:
            return str(blocks).encode()
        if block < 0 or count < 0 or block + count > blocks:
            raise OSError(errno.EIO, "")
        if op == code.CARD_READ:
            return os.pread(fd, count * code.CARD_BLOCK, block * code.CARD_BLOCK)
        if op == code.CARD_WRITE:
            os.pwrite(fd, data, block * code.CARD_BLOCK)
            return b""
        raise OSError(errno.EINVAL, "")

    # --- the person's side: eject and insert --------------------------------------------------

    def eject(self, slot: int | None) -> None:
        number = self.slot(slot)
        self._close(number)
        self.cards[number] = None

    def insert(self, slot: int | None, image: str | None = None, size: int | None = None) -> Path:
        """Insert ``image`` (a FAT image file), or the slot's own card, or a new blank one."""
        number = self.slot(slot)
        self._close(number)
        card = Path(image) if image else self._own_card(number)
        if not card.exists():
            images.create_card(self.interpreter, card, size or DEFAULT_CARD_SIZE)
        self.cards[number] = card
        return card

    def close(self) -> None:
        for number in list(self._fds):
            self._close(number)

    def status(self) -> dict[str, Any]:
        return {
            str(number): {"present": card is not None, "image": str(card) if card else None}
            for number, card in self.cards.items()
        }

    def _own_card(self, slot: int) -> Path:
        return self.dir / f"card{slot}.img"

    def _close(self, slot: int) -> None:
        fd = self._fds.pop(slot, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
