"""The virtual board behaves like a board: soft reset, SD card, USB, firmware slot, Ctrl-C.

mpremote's SerialTransport is the client here: an outside implementation of the raw REPL, so
these tests do not lean on our own driver to judge our own board.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from mpremote.transport import TransportExecError
from mpremote.transport_serial import SerialTransport
from pyfatfs.PyFatFS import PyFatFS

from hil.sim import SimBoard, images


@contextlib.contextmanager
def raw_session(board: SimBoard) -> Iterator[SerialTransport]:
    transport = SerialTransport(board.port, baudrate=115200)
    try:
        transport.enter_raw_repl(soft_reset=False)
        yield transport
    finally:
        transport.close()


def take_prompt(transport: SerialTransport) -> None:
    """mpremote leaves the raw prompt '>' unread (its next exec reads it): take it now."""
    assert transport.read_until(1, b">", timeout=10).endswith(b">")


def soft_reset(transport: SerialTransport) -> bytes:
    """Ctrl-D on an empty raw line; returns what the board printed up to its raw prompt."""
    take_prompt(transport)
    transport.serial.write(b"\x04")
    return transport.read_until(1, b"raw REPL; CTRL-B to exit\r\n", timeout=10)


def run(transport: SerialTransport, code: str) -> str:
    return transport.exec(code).decode().replace("\r\n", "\n")


def write_file(transport: SerialTransport, path: str, data: str | bytes) -> None:
    """Write and close (an unclosed file loses its data on a board too)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    run(transport, f"with open({path!r}, {mode!r}) as f:\n    f.write({data!r})")


def test_soft_reset_forgets_modules_and_keeps_files(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        write_file(t, "counter.py", "value = 1\n")
        run(t, "import vfs, machine; vfs.mount(machine.SDCard(slot=2), '/sd')")
        write_file(t, "/sd/kept.txt", "on the card")
        run(t, "import counter; counter.value = 99")
        assert run(t, "import counter; print(counter.value)") == "99\n"

        printed = soft_reset(t)
        assert printed.startswith(b"OK\r\nMPY: soft reboot\r\n")

        assert run(t, "import sys; print(sys.modules)") == "{}\n"
        assert run(t, "import vfs; print(sorted(p for _, p in vfs.mount()))") == "['/', '/rom']\n"
        assert run(t, "import counter; print(counter.value)") == "1\n"  # initial value again
        run(t, "import vfs, machine; vfs.mount(machine.SDCard(slot=2), '/sd')")
        assert run(t, "print(open('/sd/kept.txt').read())") == "on the card\n"


def test_soft_reset_from_systemexit_and_machine_soft_reset(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        for code in (b"import sys; sys.exit()", b"import machine; machine.soft_reset()"):
            take_prompt(t)
            t.serial.write(code + b"\x04")
            printed = t.read_until(1, b"raw REPL; CTRL-B to exit\r\n", timeout=10)
            assert printed == b"OK\x04\x04MPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n"
    assert virtual_board.control.status()["soft_resets"] == 2


def test_friendly_soft_reset_runs_boot_and_main_then_the_banner(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        write_file(t, "boot.py", "print('in boot')")
        write_file(t, "main.py", "print('in main')")
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=10)  # the banner of entering the friendly REPL
        t.serial.write(b"\x04")
        printed = t.read_until(1, b">>> ", timeout=10)
    assert b"MPY: soft reboot\r\nin boot\r\nin main\r\nMicroPython v" in printed
    assert printed.endswith(b' with unix\r\nType "help()" for more information.\r\n>>> ')


def test_board_writes_sd_card_and_host_reads_the_image(virtual_board: SimBoard) -> None:
    payload = os.urandom(3000)
    with raw_session(virtual_board) as t:
        run(t, "import vfs, machine; vfs.mount(machine.SDCard(slot=2), '/sd')")
        write_file(t, "/sd/DATA.BIN", payload)
        run(t, "vfs.umount('/sd')")
    image = virtual_board.control.card_image()
    assert image is not None
    fat = PyFatFS(str(image), read_only=True)  # an independent FAT implementation
    try:
        with fat.openbin("/DATA.BIN") as f:
            assert f.read() == payload
    finally:
        fat.close()


def test_card_eject_and_insert(virtual_board: SimBoard) -> None:
    mount = "import vfs, machine; vfs.mount(machine.SDCard(slot=2), '/sd')"
    with raw_session(virtual_board) as t:
        virtual_board.control.card_eject()
        with pytest.raises(TransportExecError) as no_card:
            run(t, mount)
        assert "OSError: 16" in no_card.value.error_output
        virtual_board.control.card_insert()
        run(t, mount)
        assert run(t, "import os; print(os.statvfs('/sd')[0] * os.statvfs('/sd')[2] > 7e6)") == (
            "True\n"
        )


def test_card_pulled_while_mounted_fails_io(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        run(t, "import vfs, machine; vfs.mount(machine.SDCard(slot=2), '/sd')")
        virtual_board.control.card_eject()
        with pytest.raises(TransportExecError) as pulled:
            run(t, "open('/sd/x.txt', 'w').write('x' * 5000)")
        assert "OSError" in pulled.value.error_output


def test_unplug_and_replug(virtual_board: SimBoard) -> None:
    port = virtual_board.port
    virtual_board.control.unplug()
    with pytest.raises(serial.SerialException):
        serial.Serial(port, timeout=1)
    virtual_board.control.replug(new_path=True)
    moved = virtual_board.port
    assert moved != port
    virtual_board.control.wait_ready()
    with raw_session(virtual_board) as t:
        assert run(t, "print('back')") == "back\n"


def test_unplug_while_open_hangs_up_the_reader(virtual_board: SimBoard) -> None:
    link = serial.Serial(virtual_board.port, timeout=2)
    try:
        virtual_board.control.unplug()
        with pytest.raises(serial.SerialException):
            link.write(b"\r\n")
            link.read(1)
    finally:
        link.close()


def test_ctrl_c_interrupts_a_running_program(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        t.exec_raw_no_follow("while True:\n    pass")
        t.serial.write(b"\x03")
        _out, err = t.follow(timeout=10)
        assert b"KeyboardInterrupt" in err
        assert run(t, "print('alive')") == "alive\n"


def test_flash_firmware_version_shows_in_banner_and_uname(
    virtual_board: SimBoard, tmp_path: Path
) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(images.build_firmware("v1.99.0-test", "2026-11-24"))
    with raw_session(virtual_board) as t:
        write_file(t, "mine.txt", "user data")
    status = virtual_board.control.flash(image)
    assert status["firmware"]["version"] == "v1.99.0-test"
    with raw_session(virtual_board) as t:
        uname = run(t, "import os; print(os.uname().version)")
        assert uname == "v1.99.0-test on 2026-11-24\n"
        assert run(t, "import os; print('mine.txt' in os.listdir())") == "True\n"  # flash kept
        t.exit_raw_repl()
        t.serial.write(b"\x02")
        banner = t.read_until(1, b">>> ", timeout=10)
    assert b"MicroPython v1.99.0-test on 2026-11-24; HIL virtual board with unix" in banner


def test_erase_wipes_the_flash_filesystem(virtual_board: SimBoard) -> None:
    with raw_session(virtual_board) as t:
        write_file(t, "mine.txt", "user data")
    virtual_board.control.erase()
    virtual_board.control.wait_ready()
    with raw_session(virtual_board) as t:
        assert run(t, "import os; print(sorted(os.listdir()))") == "['boot.py', 'rom']\n"


def test_flash_refuses_a_foreign_image(virtual_board: SimBoard, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(Exception, match="not a virtual-board firmware image"):
        virtual_board.control.flash(junk)
    assert virtual_board.control.status()["state"] == "ready"


def test_power_off_and_on(virtual_board: SimBoard, wait_until) -> None:
    port = Path(virtual_board.port)
    boots = virtual_board.control.status()["boots"]
    virtual_board.control.power(False)
    status = virtual_board.control.status()
    assert status["state"] == "off" and status["pid"] is None
    assert not port.exists()  # a USB-powered board takes its port along
    virtual_board.control.power(True)
    wait_until(lambda: virtual_board.control.status()["state"] == "ready", 10, "the board to boot")
    assert virtual_board.control.status()["boots"] == boots + 1
    with raw_session(virtual_board) as t:
        assert run(t, "import machine; print(machine.reset_cause())") == "1\n"  # PWRON_RESET
