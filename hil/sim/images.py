"""The virtual board's storage: firmware image, flash chip and SD card images.

A firmware image is ``HILFW1\\n`` + a header line (``version=...;date=...``) + a ROMFS image that
the board mounts at ``/rom``: the board-side half of the firmware (machine.py, os.py) plus any
frozen modules. The flash chip is a zeroed file that the board formats with LittleFS on first
boot, as a real board does. SD cards are FAT images formatted by MicroPython's own FatFs, so that
an independent host reader (pyfatfs, mtools) checks the board's writes from outside.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hil.errors import SimError
from hil.private_dir import open_private

FIRMWARE_MAGIC = b"HILFW1\n"
FIRMWARE_DIR = Path(__file__).parent / "firmware"
ROM_DIR = FIRMWARE_DIR / "rom"
BOARD_MAIN = FIRMWARE_DIR / "board_main.py"
MKFAT = FIRMWARE_DIR / "mkfat.py"

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'64M' -> 67108864; plain numbers are bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 512K, 64M, 1G)")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


@dataclass(frozen=True)
class FirmwareInfo:
    """What a firmware image says about itself."""

    version: str
    date: str
    sha256: str
    size: int


def _romfs(directories: list[Path]) -> bytes:
    """A ROMFS image holding the files of ``directories`` (later ones win on equal names)."""
    from mpremote.romfs import VfsRomWriter

    files: dict[str, bytes] = {}
    for top in directories:
        for path in sorted(top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(top).as_posix()] = path.read_bytes()
    writer = VfsRomWriter()
    _write_tree(writer, files, "")
    return writer.finalise()


def _write_tree(writer, files: dict[str, bytes], prefix: str) -> None:
    here = {name[len(prefix) :] for name in files if name.startswith(prefix)}
    dirs = sorted({name.split("/", 1)[0] for name in here if "/" in name})
    for name in sorted(name for name in here if "/" not in name):
        writer.mkfile(name, files[prefix + name])
    for name in dirs:
        writer.opendir(name)
        _write_tree(writer, files, f"{prefix}{name}/")
        writer.closedir()


def build_firmware(
    version: str, date: str, frozen: list[Path] | None = None, *, extra_header: str = ""
) -> bytes:
    """A firmware image: the board-side support modules plus ``frozen`` module directories."""
    header = f"version={version};date={date}"
    if extra_header:
        header += ";" + extra_header
    return FIRMWARE_MAGIC + header.encode() + b"\n" + _romfs([ROM_DIR, *(frozen or [])])


def read_firmware_info(image: bytes) -> FirmwareInfo:
    """Parse an image's header; SimError when it is not a virtual-board firmware image."""
    if not image.startswith(FIRMWARE_MAGIC):
        raise SimError("not a virtual-board firmware image (no HILFW1 header)")
    end = image.index(b"\n", len(FIRMWARE_MAGIC))
    fields = dict(
        item.partition("=")[::2]
        for item in image[len(FIRMWARE_MAGIC) : end].decode().split(";")
        if item
    )
    return FirmwareInfo(
        version=fields.get("version", "?"),
        date=fields.get("date", "?"),
        sha256=hashlib.sha256(image).hexdigest(),
        size=len(image),
    )


def interpreter_identity(interpreter: list[str]) -> tuple[str, str]:
    """(version label, build date) of a unix-port interpreter, e.g. ('v1.29.0-preview', ...)."""
    probe = (
        "import sys;v=sys.implementation.version;"
        "print('v%d.%d.%d' % v[:3] + ('-' + v[3] if len(v) > 3 and v[3] else ''));"
        "print(sys.version.split(' on ')[-1].split(';')[0])"
    )
    try:
        done = subprocess.run(
            [*interpreter, "-c", probe], capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise SimError(f"cannot run the MicroPython interpreter {interpreter}: {e}") from e
    lines = done.stdout.split()
    if len(lines) < 2:
        raise SimError(f"unexpected answer from interpreter {interpreter}: {done.stdout!r}")
    return lines[0], lines[1]


def create_flash(path: Path, size: int) -> None:
    """An erased flash chip: the board formats it on its next boot (never through a link)."""
    with os.fdopen(open_private(path), "wb") as f:
        f.truncate(size)


def create_card(interpreter: list[str], path: Path, size: int) -> None:
    """A FAT-formatted SD card image, formatted by MicroPython's FatFs."""
    if size < 64 * 1024 or size % 512:
        raise SimError(f"SD card size {size} must be a multiple of 512 and at least 64K")
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(open_private(tmp), "wb") as f:
        f.truncate(size)
    try:
        subprocess.run(
            [*interpreter, str(MKFAT), str(tmp)],
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as e:
        tmp.unlink(missing_ok=True)
        raise SimError(f"formatting SD card image {path} failed: {e}") from e
    os.replace(tmp, path)


# --- UF2: how an rp2-like virtual board in bootloader mode receives firmware ------------------

UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY = 0x00002000
#: UF2 family id of the virtual board ("HIL1"); real rp2040 boards use 0xE48BFF56.
UF2_FAMILY = 0x314C4948
UF2_BASE = 0x10000000
UF2_PAYLOAD = 256
UF2_BOARD_ID = "HIL-VIRTUAL-1"


def firmware_to_uf2(image: bytes) -> bytes:
    """Wrap a firmware image in UF2 blocks (256 payload bytes each), as picotool would."""
    import struct

    chunks = [image[i : i + UF2_PAYLOAD] for i in range(0, len(image), UF2_PAYLOAD)] or [b""]
    blocks = []
    for n, chunk in enumerate(chunks):
        header = struct.pack(
            "<8I",
            UF2_MAGIC_START0,
            UF2_MAGIC_START1,
            UF2_FLAG_FAMILY,
            UF2_BASE + n * UF2_PAYLOAD,
            UF2_PAYLOAD,
            n,
            len(chunks),
            UF2_FAMILY,
        )
        data = chunk.ljust(476, b"\x00")
        blocks.append(header + data + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def uf2_to_firmware(uf2: bytes) -> bytes:
    """Reassemble a firmware image from UF2 blocks; SimError on a malformed file.

    The image's own length is not in UF2, so trailing zero padding of the last block is cut
    where the ROMFS ends: the ROMFS header records its size.
    """
    import struct

    if len(uf2) % 512 or not uf2:
        raise SimError(f"UF2 file size {len(uf2)} is not a multiple of 512")
    parts: dict[int, bytes] = {}
    total = None
    for offset in range(0, len(uf2), 512):
        block = uf2[offset : offset + 512]
        m0, m1, flags, addr, size, _n, count, family = struct.unpack("<8I", block[:32])
        (end,) = struct.unpack("<I", block[508:])
        if (m0, m1, end) != (UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END):
            raise SimError(f"UF2 block {offset // 512} has bad magic numbers")
        if flags & UF2_FLAG_FAMILY and family != UF2_FAMILY:
            raise SimError(
                f"UF2 family 0x{family:08x} is not the virtual board's 0x{UF2_FAMILY:08x}"
            )
        parts[addr - UF2_BASE] = block[32 : 32 + size]
        total = count
    if total is None or len(parts) != total:
        raise SimError(f"UF2 file incomplete: {len(parts)} of {total} blocks")
    image = b"".join(parts[k] for k in sorted(parts))
    return _trim_firmware(image)


def _trim_firmware(image: bytes) -> bytes:
    """Cut block padding after the ROMFS that ends a firmware image."""
    if not image.startswith(FIRMWARE_MAGIC):
        raise SimError("UF2 payload is not a virtual-board firmware image")
    start = image.index(b"\n", len(FIRMWARE_MAGIC)) + 1
    rom = image[start:]
    if not rom.startswith(b"\xd2\xcd\x31"):
        return image[:start]
    # ROMFS: 3-byte magic, then the payload length as a big-endian base-128 varint
    length, i = 0, 3
    while True:
        byte = rom[i]
        length = (length << 7) | (byte & 0x7F)
        i += 1
        if not byte & 0x80:
            break
    return image[: start + i + length]
