"""The UF2 flow end to end, against a virtual board that behaves like an rp2 in BOOTSEL mode.

``machine.bootloader()`` over the REPL makes the board drop its serial port and show a drive
directory with INFO_UF2.TXT; the uf2 flasher copies the image there; the board takes it as its
firmware, the drive goes and the port comes back. Nothing in the flow knows the board is virtual.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from hil.board import Board
from hil.flash import (
    FirmwareEntry,
    FlashTarget,
    create_flasher,
    ensure_firmware,
    load_manifest,
)
from hil.flash.cli import board_opener
from hil.flash.session import wait_for_version
from hil.rack.inventory import rack_from_data
from hil.sim import SimBoard
from hil.sim.images import UF2_BOARD_ID, UF2_FAMILY, build_firmware, firmware_to_uf2

DATE = "2026-11-24"


def uf2_image(path: Path, version: str) -> Path:
    path.write_bytes(firmware_to_uf2(build_firmware(version, DATE)))
    return path


def load_pin(tmp_path: Path, image: Path, version: str) -> FirmwareEntry:
    """A manifest in ``tmp_path`` pinning ``image``; its entry."""
    sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        f'[firmware.rp2-like]\nplatform = "rp2"\nimage = "{image}"\n'
        f'sha256 = "{sha256}"\nversion = "{version} on {DATE}"\n'
    )
    return load_manifest(manifest).get("rp2-like")


def port_when_attached(board: SimBoard) -> Callable[[], str | None]:
    """The board's port while its USB serial device is there, else None (a USB lookup).

    A real rp2 has dropped its port before its drive appears; the virtual board detaches a few
    ms after the drive shows, so 'still listed but already in the bootloader' counts as gone.
    """

    def resolve() -> str | None:
        status = board.control.status()
        attached = status["plugged"] and status["state"] != "bootloader"
        return str(status["port"]) if attached else None

    return resolve


def test_uf2_flasher_enters_the_bootloader_over_the_repl_copies_and_finds_the_port_again(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    (vb,) = start_virtual_boards(1)
    image = uf2_image(tmp_path / "hil-virtual.uf2", "v1.29.0-uf2.1")
    entered: list[str] = []

    def enter_bootloader() -> None:
        with Board.open(vb.port, name=vb.name) as board:
            entered.append(board.eval("__import__('os').uname().version"))
            board.repl.launch("import machine\nmachine.bootloader()")

    target = FlashTarget(
        vb.name,
        port=vb.port,
        enter_bootloader=enter_bootloader,
        resolve_port=port_when_attached(vb),
    )
    drive = vb.directory / "uf2-drive"
    flasher = create_flasher(
        "uf2",
        {
            "drive": str(drive),
            "board_id": UF2_BOARD_ID,
            "family_id": UF2_FAMILY,
            "bootloader_timeout": 20.0,
            "port_timeout": 20.0,
        },
        target,
    )
    count = vb.control.status()["flashes"]
    seen: list[tuple[int, int]] = []

    flasher.flash(image, lambda done, total: seen.append((done, total)))

    assert len(entered) == 1 and entered[0] != "v1.29.0-uf2.1 on " + DATE
    assert flasher.drive is not None and flasher.drive.path == drive
    assert flasher.drive.board_id == UF2_BOARD_ID
    assert seen[-1] == (image.stat().st_size, image.stat().st_size)
    status = vb.control.status()
    assert status["flashes"] == count + 1
    assert status["firmware"]["version"] == "v1.29.0-uf2.1"
    assert not drive.exists()  # the bootloader left: the drive is gone
    assert target.resolve_port is not None and target.resolve_port() == vb.port

    def open_board() -> Board:
        return Board.open(vb.port, name=vb.name)

    pinned = load_pin(tmp_path, image, "v1.29.0-uf2.1")
    assert wait_for_version(open_board, pinned, where=vb.name, timeout=20) == pinned.version


def test_session_start_flashes_a_uf2_rack_board_and_verifies_the_new_version(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    (vb,) = start_virtual_boards(1)
    image = uf2_image(tmp_path / "pin.uf2", "v1.29.0-uf2.2")
    pinned = load_pin(tmp_path, image, "v1.29.0-uf2.2")
    table = {
        "id": "pico-like",
        "port": f"sim:{vb.directory}",
        "platform": "rp2",
        "firmware": "rp2-like",
        "flasher": {
            "name": "uf2",
            "options": {
                "drive": str(vb.directory / "uf2-drive"),
                "board_id": UF2_BOARD_ID,
                "family_id": UF2_FAMILY,
            },
        },
    }
    entry = rack_from_data({"boards": [table]}).boards[0]
    count = vb.control.status()["flashes"]

    outcome = ensure_firmware(
        entry, load_manifest(pinned.manifest), open_board=board_opener(entry), verify_timeout=30
    )

    assert outcome.flashed
    assert outcome.before is not None and outcome.before != pinned.version
    assert outcome.after == pinned.version
    assert vb.control.status()["flashes"] == count + 1
