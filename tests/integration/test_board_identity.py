"""Board identity and resets on virtual boards (native USB that vanishes on reset, and a UART
bridge whose port stays)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.board import Board
from hil.errors import RemoteError
from hil.sim import SimBoard


@pytest.fixture
def board(virtual_board: SimBoard) -> Iterator[Board]:
    with Board.open(virtual_board.port) as b:
        yield b


def test_identity(board: Board, virtual_board: SimBoard) -> None:
    status = virtual_board.control.status()
    ident = board.identity()
    assert ident.implementation == "micropython"
    assert ident.unique_id == status["uid"] and len(ident.unique_id) >= 8
    assert ident.uname["machine"] == f"{status['board']} with {status['mcu']}"
    assert ident.release in status["firmware"]["version"]
    assert board.identity() is ident  # cached


def test_exec_eval_and_streaming(board: Board) -> None:
    assert board.exec("print('caf\\xe9')") == "café\n"
    pieces: list[str] = []
    assert board.exec("for i in range(3):\n    print('\\u2603' * i)", on_output=pieces.append) == ""
    assert "".join(pieces) == "\n☃\n☃☃\n"
    assert board.eval("[1, 'two', b'3']") == [1, "two", b"3"]
    with pytest.raises(RemoteError) as info:
        board.exec("1 / 0")
    assert info.value.type_name == "ZeroDivisionError"


def test_soft_reset_returns_boot_output(board: Board) -> None:
    board.put(b"print('booting')\n", "/boot.py")
    board.exec("state = 1")
    assert board.soft_reset() == "booting\n"
    assert board.eval("'state' in globals()") is False


@pytest.mark.parametrize("usb", ["native", "uart"])
def test_hard_reset_reopens_the_port(start_virtual_boards, usb: str) -> None:
    (vb,) = start_virtual_boards(1, usb=usb)
    with Board.open(vb.port) as board:
        board.exec("state = 1")
        before = vb.control.status()["hard_resets"]
        board.hard_reset(timeout=20)
        assert vb.control.status()["hard_resets"] == before + 1
        assert board.eval("'state' in globals()") is False
        assert board.exec("print('alive')") == "alive\n"


def test_port_that_moves_on_replug_is_found_again(start_virtual_boards) -> None:
    (vb,) = start_virtual_boards(1)
    with Board.open(lambda: vb.control.port()) as board:
        vb.control.unplug()
        vb.control.replug(new_path=True)
        board.repl.reconnect(timeout=20)
        assert board.eval("2 + 2") == 4
