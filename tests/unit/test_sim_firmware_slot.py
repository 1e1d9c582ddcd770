"""The virtual board's firmware slot on its own: flashing in steps at the modelled rate, refusing
what is not a virtual-board image, a flash cut short, and the UF2 drive."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import SimError
from hil.sim import images
from hil.sim.firmware_slot import FirmwareSlot
from hil.sim.stepped_flash import STEP_INTERVAL


@pytest.fixture(scope="module")
def image() -> bytes:
    return images.build_firmware("v9.9.9-test", "2026-12-01")


@pytest.fixture
def slot(tmp_path: Path) -> FirmwareSlot:
    old = images.build_firmware("v1.0.0-old", "2026-01-01")
    (tmp_path / "firmware.bin").write_bytes(old)
    # 4 kB/s: an image of a few kB takes many steps of STEP_INTERVAL
    return FirmwareSlot("vb9", tmp_path, ["false"], flash_size=64 * 1024, flash_rate=4000)


def test_flashing_writes_a_step_per_interval_at_the_modelled_rate(
    slot: FirmwareSlot, image: bytes
) -> None:
    slot.begin(image)
    step = int(4000 * STEP_INTERVAL)
    steps = 1
    while not slot.write_step():
        assert slot.progress == (min(len(image), steps * step), len(image))
        assert slot.info()["version"] == "v1.0.0-old"  # the old firmware until the end
        steps += 1
    assert steps == -(-len(image) // step)
    assert slot.progress is None
    assert slot.firmware_path.read_bytes() == image
    assert slot.info()["version"] == "v9.9.9-test"


def test_a_foreign_image_is_refused_before_a_byte_is_written(slot: FirmwareSlot) -> None:
    before = slot.firmware_path.read_bytes()
    with pytest.raises(ValueError, match="not a virtual-board firmware image"):  # the caller's
        slot.begin(b"\x7fELF not a virtual board image")
    assert slot.progress is None and slot.firmware_path.read_bytes() == before


def test_a_second_flash_while_one_runs_is_refused(slot: FirmwareSlot, image: bytes) -> None:
    slot.begin(image)
    with pytest.raises(SimError, match="being flashed already"):
        slot.begin(image)


def test_a_flash_cut_short_keeps_the_old_firmware(slot: FirmwareSlot, image: bytes) -> None:
    slot.begin(image)
    slot.write_step()
    slot.cancel()
    assert slot.write_step() is False
    assert slot.info()["version"] == "v1.0.0-old"


def test_flash_with_erase_wipes_the_filesystem(slot: FirmwareSlot, image: bytes) -> None:
    slot.flash_path.write_bytes(b"files" * 100)
    slot.begin(image, erase=True)
    while not slot.write_step():
        pass
    assert slot.flash_path.read_bytes() == bytes(64 * 1024)  # erased: formatted at boot


def test_uf2_drive_takes_a_complete_image_and_ignores_junk(
    slot: FirmwareSlot, image: bytes
) -> None:
    drive = slot.open_drive("HIL virtual board")
    assert "Board-ID: " in (drive / "INFO_UF2.TXT").read_text()
    (drive / "junk.uf2").write_bytes(b"not uf2 at all")
    assert slot.take_drive_image() is False
    (drive / "new.uf2").write_bytes(images.firmware_to_uf2(image))
    assert slot.take_drive_image() is True
    assert not drive.exists()
    assert slot.info()["version"] == "v9.9.9-test"
