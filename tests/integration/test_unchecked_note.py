"""On a board too small for checked code (MicroPython 1.9.2 on the micro:bit: a user's code
goes unchecked), the REPL session says so once per connection and once after each reset, before
the code it is about, not after every ``>>>`` command (issue 14); the wire keeps a note for every
exec that went unchecked."""

from __future__ import annotations

from typing import Any

from hil.board import Board
from hil.replrun import UNCHECKED, UNCHECKED_AGAIN
from hil.replview import repl_view


def test_unchecked_code_is_said_once_per_connection_and_reset(
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
    assert view.count(note) == 2, view
    # said where the code it is about starts (the first exec after the reset), not after it
    after_reset = view.index("# soft reset (Ctrl-D)")
    assert view[after_reset:].index(note) < view[after_reset:].index(">>> z = 4"), view
    assert UNCHECKED_AGAIN not in [line.lstrip("# ") for line in view]
    assert wire.count(f"## {UNCHECKED_AGAIN}\n") + wire.count(f"## {UNCHECKED}\n") == 5, wire
