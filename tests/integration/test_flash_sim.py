"""Session-start flashing on virtual boards: only off-pin boards are flashed, and only once.

The board's own flash counter (``status()['flashes']``, kept by its host process) is the
witness: it counts writes into the firmware slot whoever made them, so "left alone" is proven by
the board, not by what our code says it did.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.errors import FlashError
from hil.flash import FirmwareEntry, ensure_firmware, load_manifest, verify_image
from hil.flash.cli import board_opener
from hil.rack.inventory import Board as RackBoard
from hil.rack.inventory import rack_from_data
from hil.sim import SimBoard
from hil.sim.images import ROM_DIR, read_firmware_info

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "firmware" / "manifest.toml"
PIN = "virtual-v1.29.0-hil.2"
UNAME_VERSION = "__import__('os').uname().version"


def rack_entry(board: SimBoard, firmware: str | None = PIN, **options: object) -> RackBoard:
    """The rack's view of a running virtual board, flashed by the ``sim`` flasher."""
    table: dict[str, object] = {
        "id": board.name,
        "port": f"sim:{board.directory}",
        "platform": "unix",
        "flasher": {"name": "sim", "options": options},
    }
    if firmware is not None:
        table["firmware"] = firmware
    return rack_from_data({"boards": [table]}, source="test rack").boards[0]


def flashes(board: SimBoard) -> int:
    return int(board.control.status()["flashes"])


def pin() -> FirmwareEntry:
    return load_manifest(MANIFEST).get(PIN)


def write_manifest(path: Path, firmware_id: str, image: Path, sha256: str, version: str) -> Path:
    path.write_text(
        f'[firmware."{firmware_id}"]\nplatform = "unix"\nimage = "{image}"\n'
        f'sha256 = "{sha256}"\nversion = "{version}"\n'
    )
    return path


def test_the_committed_virtual_pin_holds_todays_board_side_modules() -> None:
    """The pinned image is what its manifest entry says, and not older than the sources of the
    board-side modules it carries (ROMFS stores files as they are, so each must be in it)."""
    entry = pin()
    image = verify_image(entry).read_bytes()
    info = read_firmware_info(image)
    assert f"{info.version} on {info.date}" == entry.version
    stale = [path.name for path in sorted(ROM_DIR.rglob("*.py")) if path.read_bytes() not in image]
    assert not stale, f"rebuild with python firmware/build_virtual.py (stale: {stale})"


def test_an_off_pin_board_is_flashed_once_and_an_on_pin_board_is_left_alone(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    off_pin, on_pin = start_virtual_boards(2)
    manifest = load_manifest(MANIFEST)
    entry = manifest.get(PIN)
    on_pin.control.flash(entry.image_path())  # out of band: this board already runs the pin
    off_entry, on_entry = rack_entry(off_pin), rack_entry(on_pin)
    counts = {off_pin.name: flashes(off_pin), on_pin.name: flashes(on_pin)}

    never = ensure_firmware(off_entry, manifest, mode="never", open_board=board_opener(off_entry))
    assert not never.flashed
    assert flashes(off_pin) == counts[off_pin.name]

    seen: list[tuple[int, int]] = []
    flashed = ensure_firmware(
        off_entry,
        manifest,
        open_board=board_opener(off_entry),
        progress=lambda done, total: seen.append((done, total)),
    )
    left = ensure_firmware(on_entry, manifest, open_board=board_opener(on_entry))

    assert flashed.flashed and flashed.firmware == PIN
    assert flashed.before is not None and flashed.before != entry.version
    assert flashed.after == entry.version
    size = entry.image_path().stat().st_size
    assert seen and seen[-1] == (size, size)
    assert flashes(off_pin) == counts[off_pin.name] + 1
    assert not left.flashed and left.before == entry.version and left.reason == "on the pin"
    assert flashes(on_pin) == counts[on_pin.name]
    with board_opener(off_entry)() as board:
        assert board.eval(UNAME_VERSION) == entry.version

    again = ensure_firmware(off_entry, manifest, open_board=board_opener(off_entry))
    assert not again.flashed
    assert flashes(off_pin) == counts[off_pin.name] + 1  # flashed once, not twice


def test_erase_wipes_the_flash_filesystem(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (vb,) = start_virtual_boards(1)
    entry = rack_entry(vb, erase=True)
    open_board = board_opener(entry)
    with open_board() as board:
        board.exec("with open('mine.txt', 'w') as f:\n    f.write('user data')")
        board.exec("with open('boot.py', 'w') as f:\n    f.write('print(42)\\n')")
        assert "mine.txt" in board.eval("__import__('os').listdir()")

    outcome = ensure_firmware(entry, load_manifest(MANIFEST), mode="always", open_board=open_board)

    assert outcome.flashed
    with open_board() as board:
        assert board.eval("sorted(__import__('os').listdir())") == ["boot.py", "rom"]
        boot = board.eval("open('boot.py').read()")
    assert boot.startswith("# This file is executed on every boot")


def test_an_image_whose_sha256_differs_from_the_manifest_is_refused_before_writing(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    (vb,) = start_virtual_boards(1)
    good = pin()
    swapped = tmp_path / "swapped.img"
    shutil.copyfile(good.image_path(), swapped)
    with swapped.open("ab") as f:
        f.write(b"tampered")  # still a well-formed virtual image: only the hash can tell
    manifest = load_manifest(
        write_manifest(tmp_path / "manifest.toml", PIN, swapped, good.sha256, good.version)
    )
    entry = rack_entry(vb)
    before = vb.control.status()

    with pytest.raises(FlashError) as caught:
        ensure_firmware(entry, manifest, open_board=board_opener(entry))

    message = str(caught.value)
    actual = hashlib.sha256(swapped.read_bytes()).hexdigest()
    assert message.startswith(f"{vb.name}: ")
    assert f"refusing to flash {swapped}: sha256 is {actual}, manifest expects {good.sha256}" in (
        message
    )
    after = vb.control.status()
    assert after["flashes"] == before["flashes"]
    assert after["firmware"] == before["firmware"]


def test_a_board_reporting_another_version_after_flashing_is_a_flash_error(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    (vb,) = start_virtual_boards(1)
    good = pin()
    manifest = load_manifest(
        write_manifest(
            tmp_path / "manifest.toml",
            "mislabelled",
            good.image_path(),
            good.sha256,
            "v9.9.9 on 2099-01-01",
        )
    )
    entry = rack_entry(vb, firmware="mislabelled")
    count = flashes(vb)

    with pytest.raises(FlashError, match=rf"^{vb.name}: board reports os.uname\(\).version = "):
        ensure_firmware(entry, manifest, open_board=board_opener(entry))

    assert flashes(vb) == count + 1  # it was written; the board just is not on the pin after


def test_a_board_without_a_flasher_fails_as_a_flash_error_naming_it(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (vb,) = start_virtual_boards(1)
    table = {"id": "lonely", "port": f"sim:{vb.directory}", "platform": "unix", "firmware": PIN}
    entry = rack_from_data({"boards": [table]}).boards[0]

    with pytest.raises(FlashError, match=r"^lonely: the rack names no flasher"):
        ensure_firmware(entry, load_manifest(MANIFEST), open_board=board_opener(entry))
    assert flashes(vb) == 0
