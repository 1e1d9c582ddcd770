"""On a board too small for checked code (MicroPython 1.9.2 on the micro:bit: a user's code
goes unchecked), the REPL session says so once, before the code it is about, not after every
``>>>`` command (issue 14); the driver says it in full once per connection and once after each
reset (and again after a framework action, whose exchanges the view folds away), and the wire
keeps a short note for every other exec that went unchecked."""

from __future__ import annotations

from typing import Any

from hil.board import Board
from hil.replrun import UNCHECKED, UNCHECKED_AGAIN
from hil.replview import repl_view


def test_unchecked_code_is_said_once_in_the_session_and_per_reset_on_the_wire(
    microbit_board: Any,  # tests/conftest.py's MicrobitBoard
) -> None:
    with Board.open(microbit_board.port) as board:
        start = board.transcript.mark()
        board.probe()  # a small board: its user code goes unchecked from now on
        mark = board.transcript.mark()
        board.exec("x = 1")
        assert board.exec("print(x + 1)") == "2\n"
        board.exec("y = 3")
        board.soft_reset()
        board.exec("z = 4")
        assert board.exec("print(z)") == "4\n"
        view = repl_view(board.transcript.entries(start)).split("\n")
        wire = board.transcript.render(mark)
    note = f"# {UNCHECKED}"
    assert view.count(note) == 1, view
    assert view[view.index(note) + 1] == ">>> x = 1", view  # before the code it is about
    assert UNCHECKED_AGAIN not in [line.lstrip("# ") for line in view]
    # in full at the first exec of the test's own (the probe's was folded) and after the reset
    assert wire.count(f"## {UNCHECKED}\n") == 2, wire
    assert wire.count(f"## {UNCHECKED_AGAIN}\n") == 3, wire
