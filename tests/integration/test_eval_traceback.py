"""``Board.eval``'s traceback reads as the expression typed at ``>>>`` (issue 14): line 1 where
the expression starts, none of the helper code around it, on both kinds of virtual board (the
unix port sends it by raw-paste; MicroPython 1.9.2 on the micro:bit checks it in a wrapper and
reports the helper's ``finally`` as a frame of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.board import Board
from hil.errors import RemoteError
from hil.replview import repl_view


@pytest.fixture(params=["unix", "microbit"])
def any_board(request: pytest.FixtureRequest) -> Iterator[Board]:
    if request.param == "unix":
        port = request.getfixturevalue("start_virtual_boards")(1)[0].port
    else:
        port = request.getfixturevalue("microbit_board").port
    with Board.open(port) as b:
        yield b


def _frames(traceback: str) -> list[str]:
    return [line.strip() for line in traceback.splitlines() if line.strip().startswith("File ")]


@pytest.mark.parametrize(
    ("expression", "frames"),
    [
        ("1 / 0", ['File "<stdin>", line 1, in <module>']),
        ("(1,\n 1 / 0)", ['File "<stdin>", line 2, in <module>']),
        (
            "(lambda: 0,\n (lambda: 1 / 0)())",
            ['File "<stdin>", line 2, in <module>', 'File "<stdin>", line 2, in <lambda>'],
        ),
        ("(1,\n 2 +)", ['File "<stdin>", line 2']),
    ],
)
def test_eval_traceback_is_the_expressions_own(
    any_board: Board, expression: str, frames: list[str]
) -> None:
    mark = any_board.transcript.mark()
    with pytest.raises(RemoteError) as info:
        any_board.eval(expression)
    assert _frames(info.value.traceback) == frames, info.value.traceback
    view = repl_view(any_board.transcript.entries(mark))
    assert _frames(view) == frames, view
    assert any_board.eval("6 * 7") == 42


def test_a_function_defined_earlier_keeps_its_frame_and_line(any_board: Board) -> None:
    """A function from an earlier exec is a ``<stdin>`` frame too, at its own line: the
    expression's frames are renumbered, the function's stays as it is (a REPL shows it so)."""
    any_board.exec("x = 1\n\ndef f():\n    return 1 / 0\n")
    mark = any_board.transcript.mark()
    with pytest.raises(RemoteError) as info:
        any_board.eval("f()")
    frames = ['File "<stdin>", line 1, in <module>', 'File "<stdin>", line 4, in f']
    assert _frames(info.value.traceback) == frames, info.value.traceback
    view = repl_view(any_board.transcript.entries(mark))
    assert _frames(view) == frames, view
