"""UF2 boards (rp2, samd, ...): bootloader drive, copy the image, wait for the port to return.

The UF2 bootloader shows up as a small FAT drive whose root holds ``INFO_UF2.TXT``; copying a
``.uf2`` file onto it writes the flash and reboots the board. Everything here is files and
directories, so the same code runs against a real drive under ``/media/$USER`` and against the
virtual board's drive directory, and the unit tests use a plain temporary directory.

The image is checked block by block before the board is asked to do anything: a truncated or
foreign file would otherwise be silently ignored by the bootloader, which just waits for more
blocks, and we would only learn that at the port timeout.
"""

from __future__ import annotations

import glob
import os
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from hil.errors import FlashError
from hil.flash.base import (
    Flasher,
    ProgressFn,
    enter_bootloader,
    no_progress,
    poll_until,
    wait_for_port,
)

BLOCK_SIZE = 512
MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
MAX_PAYLOAD = 476
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID = 0x00002000
INFO_FILE = "INFO_UF2.TXT"

#: Where desktop automounters (udisks) put removable drives; ``$USER`` and ``~`` are expanded.
DEFAULT_MOUNT_ROOTS = ("/media/$USER/*", "/run/media/$USER/*", "/media/*")

#: Held while a board without an explicit drive path goes to its bootloader and is written, so
#: two boards of the same kind flashed in parallel cannot both pick the same new drive.
_DISCOVERY_LOCK = threading.Lock()

_HEADER = struct.Struct("<8I")
_END = struct.Struct("<I")
_COPY_CHUNK = 64 * BLOCK_SIZE


@dataclass(frozen=True)
class Uf2Image:
    """What a validated ``.uf2`` file contains."""

    path: Path
    blocks: int
    payload_bytes: int
    family_ids: frozenset[int]


def validate_uf2(path: Path, *, family_id: int | None = None) -> Uf2Image:
    """Check every block of a UF2 file; ``FlashError`` naming the file and block on the first fault.

    A file may hold several concatenated images (e.g. for RP2350, one per family), so block
    numbers are checked against their own block's count, and ``family_id`` must be among the
    families the file declares.
    """
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FlashError(f"cannot read UF2 image: {exc}", where=where) from None
    if not data or len(data) % BLOCK_SIZE:
        raise FlashError(
            f"not a UF2 image: {len(data)} bytes is not a whole number of 512-byte blocks",
            where=where,
        )
    families: set[int] = set()
    payload = 0
    for index, block in enumerate(_blocks(data)):
        magic0, magic1, flags, _addr, size, number, count, family = _HEADER.unpack_from(block)
        (magic_end,) = _END.unpack_from(block, BLOCK_SIZE - 4)
        fault = ""
        if (magic0, magic1, magic_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            fault = "bad magic numbers"
        elif size > MAX_PAYLOAD:
            fault = f"payload size {size} exceeds {MAX_PAYLOAD}"
        elif count == 0 or number >= count:
            fault = f"block number {number} is not below the block count {count}"
        if fault:
            raise FlashError(f"not a valid UF2 image: block {index}: {fault}", where=where)
        if flags & FLAG_FAMILY_ID:
            families.add(family)
        if not flags & FLAG_NOT_MAIN_FLASH:
            payload += size
    if family_id is not None and family_id not in families:
        found = ", ".join(f"0x{f:08x}" for f in sorted(families)) or "none"
        raise FlashError(
            f"UF2 image is not for family 0x{family_id:08x} (its families: {found})", where=where
        )
    return Uf2Image(path, len(data) // BLOCK_SIZE, payload, frozenset(families))


def _blocks(data: bytes) -> Iterator[bytes]:
    for offset in range(0, len(data), BLOCK_SIZE):
        yield data[offset : offset + BLOCK_SIZE]


@dataclass(frozen=True)
class DriveInfo:
    """A UF2 bootloader drive and what its ``INFO_UF2.TXT`` says."""

    path: Path
    bootloader: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def board_id(self) -> str:
        return self.fields.get("Board-ID", "")

    @property
    def model(self) -> str:
        return self.fields.get("Model", "")


def parse_info_uf2(text: str, path: Path) -> DriveInfo:
    """Parse ``INFO_UF2.TXT``: a first line naming the bootloader, then ``Key: value`` lines."""
    bootloader = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            fields[key.strip()] = value.strip()
        elif line.strip() and not bootloader:
            bootloader = line.strip()
    return DriveInfo(path=path, bootloader=bootloader, fields=fields)


def read_drive(path: Path) -> DriveInfo | None:
    """The drive at ``path`` if it is a UF2 bootloader drive right now, else ``None``."""
    try:
        text = (path / INFO_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:  # absent, or the drive is being mounted / unmounted under us
        return None
    return parse_info_uf2(text, path)


def find_drives(roots: tuple[str, ...]) -> list[DriveInfo]:
    """Every UF2 drive under the mount-root patterns (globs; ``$USER`` and ``~`` expanded)."""
    drives = []
    seen: set[Path] = set()
    for root in roots:
        pattern = os.path.expanduser(os.path.expandvars(root))
        for candidate in sorted(glob.glob(pattern)):
            path = Path(candidate)
            if path in seen or not path.is_dir():
                continue
            seen.add(path)
            info = read_drive(path)
            if info is not None:
                drives.append(info)
    return drives


@dataclass(frozen=True)
class Uf2Options:
    """Rack options of a UF2 board; field names are the rack keys.

    ``drive`` is the drive's mount point when the rack pins it (robust when many boards of one
    kind share a host); otherwise new drives are looked for under ``mount_roots``.
    ``board_id`` is the expected ``Board-ID`` (e.g. ``RPI-RP2``), ``family_id`` the UF2 family
    the image must carry (e.g. 0xe48bff56 for RP2040).
    """

    drive: Path | None = None
    mount_roots: tuple[str, ...] = DEFAULT_MOUNT_ROOTS
    board_id: str | None = None
    family_id: int | None = None
    bootloader_timeout: float = 30.0
    port_timeout: float = 30.0
    poll_interval: float = 0.1

    def __post_init__(self) -> None:
        if self.bootloader_timeout <= 0 or self.port_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.drive is None and not self.mount_roots:
            raise ValueError("give either drive or mount_roots")


class Uf2Flasher(Flasher):
    """Bootloader drive flow: enter bootloader, find the drive, copy, wait for the port."""

    name = "uf2"
    options_type: ClassVar[type] = Uf2Options
    image_suffixes = (".uf2",)
    options: Uf2Options

    #: The drive used by the last ``flash`` (for logs and tests).
    drive: DriveInfo | None = None

    def describe(self) -> str:
        where = self.options.drive or "auto-detected drive"
        return f"uf2 on {self.board} via {where}"

    def flash(self, image: Path, progress: ProgressFn = no_progress) -> None:
        self.check_image(image)
        validate_uf2(image, family_id=self.options.family_id)
        if self.options.drive is not None:
            drive = self._enter_and_wait_explicit(self.options.drive)
            self._copy(image, drive, progress)
        else:
            with _DISCOVERY_LOCK:
                drive = self._enter_and_discover()
                self._copy(image, drive, progress)
        wait_for_port(
            self.target, timeout=self.options.port_timeout, interval=self.options.poll_interval
        )

    def _enter_and_wait_explicit(self, path: Path) -> DriveInfo:
        # A drive already there means the board already sits in its bootloader (e.g. after a
        # flash that failed halfway): its REPL is gone, so do not ask it for anything.
        if read_drive(path) is None:
            enter_bootloader(self.target)
        info = poll_until(
            lambda: read_drive(path),
            timeout=self.options.bootloader_timeout,
            interval=self.options.poll_interval,
            what=f"UF2 drive {path} ({INFO_FILE})",
            where=self.board,
        )
        if not self._board_id_matches(info):
            raise FlashError(
                f"drive {path} is Board-ID {info.board_id!r}, expected {self.options.board_id!r}",
                where=self.board,
            )
        return info

    def _enter_and_discover(self) -> DriveInfo:
        roots = self.options.mount_roots
        before = {d.path for d in find_drives(roots)}
        if self.target.enter_bootloader is None:
            before = set()  # nothing to trigger: the board is expected to be in bootloader mode
        enter_bootloader(self.target)

        def new_drive() -> DriveInfo | None:
            for info in find_drives(roots):
                if info.path not in before and self._board_id_matches(info):
                    return info
            return None

        wanted = f" with Board-ID {self.options.board_id}" if self.options.board_id else ""
        return poll_until(
            new_drive,
            timeout=self.options.bootloader_timeout,
            interval=self.options.poll_interval,
            what=f"a new UF2 drive{wanted} under {', '.join(roots)}",
            where=self.board,
        )

    def _board_id_matches(self, info: DriveInfo) -> bool:
        wanted = self.options.board_id
        return wanted is None or info.board_id.upper().startswith(wanted.upper())

    def _copy(self, image: Path, drive: DriveInfo, progress: ProgressFn) -> None:
        """Copy in block-aligned chunks, reporting bytes; then make the OS actually write them.

        The bootloader reboots the board when the last block lands, so the drive may vanish
        while we flush or close: an error *after* every byte was handed over is not a failure.
        """
        self.drive = drive
        total = image.stat().st_size
        destination = drive.path / image.name
        done = 0
        progress(0, total)
        try:
            with image.open("rb") as source:
                target = destination.open("wb")
                try:
                    while chunk := source.read(_COPY_CHUNK):
                        target.write(chunk)
                        target.flush()  # hand each chunk to the OS: progress means written
                        done += len(chunk)
                        progress(done, total)
                    os.fsync(target.fileno())
                finally:
                    target.close()
        except OSError as exc:
            if done < total:
                raise FlashError(
                    f"copying {image.name} to {drive.path} failed after {done} of {total} "
                    f"bytes: {exc}",
                    where=self.board,
                ) from None
