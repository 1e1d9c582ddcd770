"""The physical SD card: it mounts, stores and returns data, on every board with a slot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.firmware import needs_sd
from fixtures.sim_access import card_control
from hil.errors import RemoteError

pytestmark = pytest.mark.board(capabilities=["sd"])


def mount_points(board) -> list[str]:
    return board.eval("[p for _, p in __import__('vfs').mount()]")


def write(board, path: str, data: bytes) -> None:
    board.exec(f"with open({path!r}, 'wb') as f:\n    f.write({data!r})")


def read(board, path: str) -> bytes:
    return board.eval(f"open({path!r}, 'rb').read()")


def remount(board) -> None:
    board.exec("import sdcard_helper\nsdcard_helper.unmount()\nsdcard_helper.mount()")


def test_mount_puts_the_card_in_the_mount_table(sd) -> None:
    assert sd.mount_point in mount_points(sd.board)
    assert sd.board.eval("sdcard_helper.is_mounted()") is True


def test_statvfs_agrees_with_the_card_size(sd) -> None:
    block, _, blocks = sd.board.eval(f"__import__('os').statvfs({sd.mount_point!r})")[1:4]
    volume = block * blocks
    control = card_control(sd.entry)
    if control is not None:
        card = Path(control.card_image()).stat().st_size
    elif sd.entry.capabilities.sd.driver == "machine.SDCard":
        card = sd.board.eval(
            f"__import__('machine').SDCard({sd.entry.capabilities.sd.slot}).info()[0]"
        )
    else:
        pytest.skip(
            f"{sd.entry.id}: its {sd.entry.capabilities.sd.driver} driver does not report "
            "the card size"
        )
    # a FAT volume spans the card less its reserved sectors, FATs and root directory
    assert 0.9 * card <= volume <= card


def test_file_reads_back_byte_for_byte(sd) -> None:
    data = os.urandom(4096) + bytes(range(256))
    write(sd.board, sd.path("hil_data.bin"), data)
    assert read(sd.board, sd.path("hil_data.bin")) == data


def test_file_survives_unmount_and_remount(sd) -> None:
    data = b"kept across a remount\n" * 20
    write(sd.board, sd.path("hil_remount.txt"), data)
    remount(sd.board)
    assert read(sd.board, sd.path("hil_remount.txt")) == data


def test_file_survives_a_soft_reset_and_a_remount(sd) -> None:
    data = os.urandom(1000)
    write(sd.board, sd.path("hil_reset.bin"), data)
    sd.board.soft_reset()
    assert sd.board.eval("__import__('sdcard_helper')._mounted") is False
    sd.board.exec("import sdcard_helper\nsdcard_helper.mount()")
    assert read(sd.board, sd.path("hil_reset.bin")) == data


def test_second_mount_is_harmless(sd) -> None:
    assert sd.board.eval("sdcard_helper.mount()") is True
    assert mount_points(sd.board).count(sd.mount_point) == 1
    assert sd.board.eval("sdcard_helper.is_mounted()") is True


def test_host_reads_what_the_board_wrote(sd) -> None:
    control = card_control(sd.entry)
    if control is None:
        pytest.skip(f"{sd.entry.id}: the host cannot read this board's card in its slot")
    from pyfatfs.PyFatFS import PyFatFS

    data = os.urandom(2500)
    # a long name: FatFs stores short lower-case names as 8.3 with case flags pyfatfs ignores
    write(sd.board, sd.path("hil_written_by_the_board.bin"), data)
    sd.board.exec("sdcard_helper.unmount()")
    fat = PyFatFS(str(control.card_image()), read_only=True)
    try:
        with fat.openbin("/hil_written_by_the_board.bin") as f:
            assert f.read() == data
    finally:
        fat.close()
    sd.board.exec("sdcard_helper.mount()")


def test_no_card_fails_cleanly(request, hil_board_entry) -> None:
    needs_sd(hil_board_entry)
    control = card_control(hil_board_entry)
    if control is None:
        pytest.skip(
            f"{hil_board_entry.id}: no card ejector (pulling the card needs a virtual board)"
        )
    firmware = request.getfixturevalue("firmware")
    control.card_eject()
    try:
        firmware.exec("import sdcard_helper")
        with pytest.raises(RemoteError) as error:
            firmware.exec("sdcard_helper.mount()")
        assert error.value.type_name == "OSError"
        assert firmware.eval("sdcard_helper._mounted") is False
        assert firmware.eval("sdcard_helper.is_mounted()") is False
        assert "/sd" not in mount_points(firmware)
    finally:
        control.card_insert()
    assert firmware.eval("sdcard_helper.mount()") is True
    firmware.exec("sdcard_helper.unmount()")
