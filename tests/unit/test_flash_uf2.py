"""The UF2 flasher against a real directory acting as the bootloader drive.

A fake board (threads and files, nothing mocked inside the flasher) plays the hardware: asked to
enter its bootloader, it mounts a drive directory with INFO_UF2.TXT a moment later; once the image
lands on the drive it "reboots", and its serial port comes back under a new name.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest

from hil.errors import ConfigError, FlashError
from hil.flash import uf2
from hil.flash.base import FlashTarget, create_flasher
from hil.flash.uf2 import (
    BLOCK_SIZE,
    FLAG_FAMILY_ID,
    MAGIC_END,
    MAGIC_START0,
    MAGIC_START1,
    find_drives,
    parse_info_uf2,
    validate_uf2,
)

RP2040 = 0xE48BFF56
RP2350_ARM_S = 0xE48BFF59
INFO_RP2040 = "UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2\r\n"


def uf2_image(payload: bytes, family: int | None = RP2040, *, base: int = 0x10000000) -> bytes:
    """A well-formed UF2 file: 256-byte payloads, as picotool and MicroPython's build make."""
    chunks = [payload[i : i + 256] for i in range(0, len(payload), 256)] or [b""]
    blocks = []
    for number, chunk in enumerate(chunks):
        flags = FLAG_FAMILY_ID if family is not None else 0
        header = struct.pack(
            "<8I",
            MAGIC_START0,
            MAGIC_START1,
            flags,
            base + 256 * number,
            len(chunk),
            number,
            len(chunks),
            family or 0,
        )
        data = chunk.ljust(476, b"\x00")
        blocks.append(header + data + struct.pack("<I", MAGIC_END))
    return b"".join(blocks)


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at ``offset`` (header fields: payload size at 16, ...)."""
    return data[:offset] + value + data[offset + len(value) :]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "RPI_PICO-v1.24.1.uf2"
    path.write_bytes(uf2_image(bytes(range(256)) * 300))  # 300 blocks, several copy chunks
    return path


class FakeRp2:
    """A board that mounts a UF2 drive when asked and re-enumerates once the image is copied."""

    def __init__(self, media: Path, *, label: str = "RPI-RP2", info: str = INFO_RP2040) -> None:
        self.drive = media / label
        self.info = info
        self.asked = threading.Event()
        self.threads: list[threading.Thread] = []

    def enter_bootloader(self) -> None:
        self.asked.set()

        def mount() -> None:
            threading.Event().wait(0.05)  # the board takes a moment to reboot into the ROM
            self.drive.mkdir(parents=True, exist_ok=True)
            (self.drive / "INDEX.HTM").write_text("<html></html>")
            (self.drive / "INFO_UF2.TXT").write_text(self.info)

        thread = threading.Thread(target=mount)
        thread.start()
        self.threads.append(thread)

    def resolve_port(self) -> str | None:
        copied = list(self.drive.glob("*.uf2")) if self.drive.exists() else []
        return "/dev/ttyACM1" if copied else None

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=10)


def target(board: FakeRp2 | None, name: str = "pico-1") -> FlashTarget:
    if board is None:
        return FlashTarget(name, port="/dev/ttyACM0")
    return FlashTarget(
        name,
        port="/dev/ttyACM0",
        enter_bootloader=board.enter_bootloader,
        resolve_port=board.resolve_port,
    )


def fast(**options: object) -> dict[str, object]:
    return {"bootloader_timeout": 10.0, "port_timeout": 10.0, "poll_interval": 0.01, **options}


def test_uf2_flow_finds_new_drive_copies_with_progress_and_waits_for_port(
    tmp_path: Path, image: Path
) -> None:
    media = tmp_path / "media" / "user"
    media.mkdir(parents=True)
    board = FakeRp2(media)
    flasher = create_flasher("uf2", fast(mount_roots=[f"{media}/*"]), target(board))
    seen: list[tuple[int, int]] = []
    flasher.flash(image, lambda done, total: seen.append((done, total)))
    board.join()
    assert board.asked.is_set()
    assert (board.drive / image.name).read_bytes() == image.read_bytes()
    total = image.stat().st_size
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert len(seen) > 3  # progress during the copy, not only start and end
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert flasher.drive is not None
    assert flasher.drive.board_id == "RPI-RP2"
    assert flasher.drive.model == "Raspberry Pi RP2"


def test_uf2_ignores_a_drive_that_was_there_before_the_bootloader_was_asked(
    tmp_path: Path, image: Path
) -> None:
    media = tmp_path / "media"
    stale = media / "OLD-RP2"
    stale.mkdir(parents=True)
    (stale / "INFO_UF2.TXT").write_text(INFO_RP2040)
    board = FakeRp2(media)
    create_flasher("uf2", fast(mount_roots=[f"{media}/*"]), target(board)).flash(image)
    board.join()
    assert list(stale.glob("*.uf2")) == []
    assert (board.drive / image.name).exists()


def test_uf2_board_id_filter_skips_drives_of_other_boards(tmp_path: Path, image: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    other = FakeRp2(media, label="FTHRBOOT", info="UF2 Bootloader v3\nBoard-ID: SAMD21G18A\n")
    board = FakeRp2(media)

    def both() -> None:
        other.enter_bootloader()
        board.enter_bootloader()

    flasher = create_flasher(
        "uf2",
        fast(mount_roots=[f"{media}/*"], board_id="rpi-rp2"),
        FlashTarget("pico-1", enter_bootloader=both, resolve_port=board.resolve_port),
    )
    flasher.flash(image)
    other.join()
    board.join()
    assert list(other.drive.glob("*.uf2")) == []
    assert (board.drive / image.name).exists()


def test_uf2_explicit_drive_already_in_bootloader_is_not_asked_again(
    tmp_path: Path, image: Path
) -> None:
    board = FakeRp2(tmp_path)
    board.drive.mkdir()
    (board.drive / "INFO_UF2.TXT").write_text(INFO_RP2040)
    flasher = create_flasher("uf2", fast(drive=str(board.drive)), target(board))
    flasher.flash(image)
    assert not board.asked.is_set()
    assert (board.drive / image.name).read_bytes() == image.read_bytes()


def test_uf2_explicit_drive_waits_for_it_to_appear(tmp_path: Path, image: Path) -> None:
    board = FakeRp2(tmp_path)
    create_flasher("uf2", fast(drive=str(board.drive)), target(board)).flash(image)
    board.join()
    assert board.asked.is_set()
    assert (board.drive / image.name).exists()


def test_uf2_explicit_drive_of_the_wrong_board_is_refused(tmp_path: Path, image: Path) -> None:
    board = FakeRp2(tmp_path, info="UF2 Bootloader v3.0\nBoard-ID: RP2350\n")
    flasher = create_flasher("uf2", fast(drive=str(board.drive), board_id="RPI-RP2"), target(board))
    with pytest.raises(FlashError, match=r"pico-1: drive .* is Board-ID 'RP2350'"):
        flasher.flash(image)
    board.join()
    assert list(board.drive.glob("*.uf2")) == []


def test_uf2_drive_that_never_appears_times_out_naming_the_board(
    tmp_path: Path, image: Path
) -> None:
    asked = []
    flasher = create_flasher(
        "uf2",
        fast(mount_roots=[f"{tmp_path}/*"], bootloader_timeout=0.1),
        FlashTarget("pico-9", enter_bootloader=lambda: asked.append(True)),
    )
    with pytest.raises(FlashError, match=r"^pico-9: timed out after 0.1s waiting for a new UF2"):
        flasher.flash(image)
    assert asked == [True]


def test_uf2_port_that_never_comes_back_times_out(tmp_path: Path, image: Path) -> None:
    board = FakeRp2(tmp_path)
    flasher = create_flasher(
        "uf2",
        fast(drive=str(board.drive), port_timeout=0.1),
        FlashTarget("pico-1", enter_bootloader=board.enter_bootloader, resolve_port=lambda: None),
    )
    with pytest.raises(FlashError, match=r"pico-1: timed out .* serial port to come back"):
        flasher.flash(image)
    board.join()


def test_uf2_invalid_image_is_refused_before_the_board_is_touched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.uf2"
    data = bytearray(uf2_image(b"\x00" * 1024))
    data[BLOCK_SIZE * 2 + 508] ^= 0xFF  # corrupt the end magic of block 2
    bad.write_bytes(bytes(data))
    board = FakeRp2(tmp_path)
    flasher = create_flasher("uf2", fast(drive=str(board.drive)), target(board))
    with pytest.raises(FlashError, match=r"bad\.uf2: not a valid UF2 image: block 2: bad magic"):
        flasher.flash(bad)
    assert not board.asked.is_set()


def test_uf2_family_mismatch_is_refused(tmp_path: Path, image: Path) -> None:
    flasher = create_flasher("uf2", fast(drive=str(tmp_path), family_id=RP2350_ARM_S), target(None))
    with pytest.raises(FlashError, match=r"not for family 0xe48bff59 .*0xe48bff56"):
        flasher.flash(image)


def test_uf2_copy_failing_midway_is_a_flash_error(tmp_path: Path, image: Path) -> None:
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text(INFO_RP2040)
    (drive / image.name).mkdir()  # the destination cannot be opened as a file
    flasher = create_flasher("uf2", fast(drive=str(drive)), target(None))
    with pytest.raises(FlashError, match=r"pico-1: copying .* failed after 0 of \d+ bytes"):
        flasher.flash(image)


def test_uf2_drive_vanishing_after_the_last_byte_is_success(
    tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bootloader reboots on the last block: the flush can fail, the flash did not."""
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text(INFO_RP2040)

    def fsync_on_vanished_drive(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(uf2.os, "fsync", fsync_on_vanished_drive)
    create_flasher("uf2", fast(drive=str(drive)), target(None)).flash(image)
    assert os.path.getsize(drive / image.name) == image.stat().st_size


def test_validate_uf2_counts_blocks_payload_and_families(tmp_path: Path) -> None:
    path = tmp_path / "a.uf2"
    path.write_bytes(uf2_image(b"\x01" * 1000) + uf2_image(b"\x02" * 256, RP2350_ARM_S))
    info = validate_uf2(path, family_id=RP2350_ARM_S)
    assert info.blocks == 5
    assert info.payload_bytes == 1256
    assert info.family_ids == {RP2040, RP2350_ARM_S}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a whole number of 512-byte blocks"),
        (uf2_image(b"\x00" * 300)[:-1], "not a whole number of 512-byte blocks"),
        (b"\x00" * 512, "block 0: bad magic numbers"),
        (
            patched(uf2_image(b"\x00" * 256), 16, struct.pack("<I", 477)),
            "payload size 477 exceeds 476",
        ),
        (
            patched(uf2_image(b"\x00" * 256), 20, struct.pack("<II", 3, 3)),
            "block number 3 is not below the block count 3",
        ),
    ],
)
def test_validate_uf2_rejects_malformed_files(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "x.uf2"
    path.write_bytes(data)
    with pytest.raises(FlashError, match=words):
        validate_uf2(path)


def test_parse_info_uf2_reads_bootloader_line_and_fields(tmp_path: Path) -> None:
    info = parse_info_uf2(INFO_RP2040 + "Date: Sep 23 2020\n", tmp_path)
    assert info.bootloader == "UF2 Bootloader v3.0"
    assert info.board_id == "RPI-RP2"
    assert info.model == "Raspberry Pi RP2"
    assert info.fields["Date"] == "Sep 23 2020"


def test_find_drives_expands_user_and_only_returns_uf2_drives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "ci")
    (tmp_path / "ci" / "USBSTICK").mkdir(parents=True)
    (tmp_path / "ci" / "RPI-RP2").mkdir()
    (tmp_path / "ci" / "RPI-RP2" / "INFO_UF2.TXT").write_text(INFO_RP2040)
    drives = find_drives((f"{tmp_path}/$USER/*",))
    assert [d.path.name for d in drives] == ["RPI-RP2"]


def test_uf2_options_need_a_drive_or_mount_roots() -> None:
    with pytest.raises(ConfigError, match="give either drive or mount_roots"):
        create_flasher("uf2", {"mount_roots": []}, FlashTarget("pico-1"))
