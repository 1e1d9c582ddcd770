"""Fidelity of the virtual board, judged by an outside tool: unmodified mpremote from PyPI, run as
a subprocess exactly as a user runs it against a real board."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from hil.sim import SimBoard


def mpremote(board: SimBoard, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", board.port, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(board: SimBoard, *args: str) -> str:
    done = mpremote(board, *args)
    assert done.returncode == 0, f"mpremote {args} failed: {done.stdout}{done.stderr}"
    return done.stdout


def test_exec_eval_and_run(virtual_board: SimBoard, tmp_path: Path) -> None:
    assert ok(virtual_board, "exec", "print('hi', 6 * 7)") == "hi 42\n"
    assert ok(virtual_board, "eval", "[1, 2] + [3]") == "[1, 2, 3]\n"
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.implementation.name)\n")
    assert ok(virtual_board, "run", str(script)) == "micropython\n"


def test_board_error_is_reported_like_a_real_board(virtual_board: SimBoard) -> None:
    done = mpremote(virtual_board, "exec", "undefined_name")
    assert done.returncode == 1
    assert "NameError: name 'undefined_name' isn't defined" in done.stdout
    assert 'File "<stdin>", line 1, in <module>' in done.stdout
    assert "hil/sim/firmware" not in done.stdout  # the firmware's own frames stay hidden


def test_fs_cp_ls_cat_sha256sum_rm(virtual_board: SimBoard, tmp_path: Path) -> None:
    payload = os.urandom(20_000)
    local = tmp_path / "blob.bin"
    local.write_bytes(payload)
    ok(virtual_board, "fs", "cp", str(local), ":blob.bin")
    listing = ok(virtual_board, "fs", "ls")
    assert "20000 blob.bin" in listing
    digest = ok(virtual_board, "fs", "sha256sum", ":blob.bin")
    assert hashlib.sha256(payload).hexdigest() in digest
    back = tmp_path / "back.bin"
    ok(virtual_board, "fs", "cp", ":blob.bin", str(back))
    assert back.read_bytes() == payload
    assert "executed on every boot" in ok(virtual_board, "fs", "cat", ":boot.py")
    ok(virtual_board, "fs", "rm", ":blob.bin")
    assert "blob.bin" not in ok(virtual_board, "fs", "ls")


def test_soft_reset_and_resume(virtual_board: SimBoard) -> None:
    ok(virtual_board, "exec", "kept = 41")
    # `resume` skips mpremote's automatic soft reset: state of the last session is still there
    assert ok(virtual_board, "resume", "exec", "print(kept + 1)") == "42\n"
    ok(virtual_board, "soft-reset")
    done = mpremote(virtual_board, "resume", "exec", "print(kept)")
    assert "NameError" in done.stdout
    assert virtual_board.control.status()["soft_resets"] >= 2


def test_hard_reset(virtual_board: SimBoard, wait_until) -> None:
    before = virtual_board.control.status()["hard_resets"]
    ok(virtual_board, "reset")
    wait_until(
        lambda: virtual_board.control.status()["hard_resets"] == before + 1,
        10,
        "the board's hard reset",
    )
    wait_until(lambda: virtual_board.control.status()["state"] == "ready", 10, "the board to boot")
    cause = ok(virtual_board, "resume", "exec", "import machine; print(machine.reset_cause())")
    assert cause == "2\n"  # machine.HARD_RESET


def test_hard_reset_over_a_uart_bridge_keeps_the_port(start_virtual_boards, wait_until) -> None:
    (board,) = start_virtual_boards(1, usb="uart")
    tty_before = board.control.status()["tty"]
    ok(board, "reset")
    wait_until(lambda: board.control.status()["hard_resets"] == 1, 10, "the hard reset")
    assert board.control.status()["tty"] == tty_before


def test_hard_reset_over_native_usb_drops_the_port(virtual_board: SimBoard, wait_until) -> None:
    port = Path(virtual_board.port)
    virtual_board.control.reset()
    wait_until(lambda: not port.exists(), 10, "the port to leave the bus")
    wait_until(port.exists, 10, "the port to come back")  # ...and enumerated again
