"""A ``BoardTimeout`` of code that did not finish reads for a person (issue 14): the deadline in
rounded seconds, no protocol-level detail, and what the board printed since the code was sent as
a REPL shows it (no raw REPL framing, no earlier exchange), or that it sent nothing at all. The
raw bytes stay in ``tail``. On both kinds of virtual board: the unix port answers by raw-paste,
MicroPython 1.9.2 on the micro:bit by plain raw (``OK``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from hil.board import Board
from hil.errors import BoardTimeout
from hil.sim import SimBoard

#: Bytes of the raw REPL's framing that a message must not show (escaped as the message does).
FRAMING = re.compile(r"\\x0[146]|raw REPL|R\\x01|#hil|'sysname'")


@pytest.fixture(params=["unix", "microbit"])
def kind_board(request: pytest.FixtureRequest) -> Iterator[Board]:
    if request.param == "unix":
        port = request.getfixturevalue("start_virtual_boards")(1)[0].port
    else:
        port = request.getfixturevalue("microbit_board").port
    with Board.open(port) as b:
        b.identity()  # an earlier exchange whose answer is in the link's last bytes
        yield b


def test_a_program_that_printed_then_hung_shows_its_last_lines(kind_board: Board) -> None:
    code = "for i in range(8):\n    print('tick', i)\nwhile True:\n    pass"
    with pytest.raises(BoardTimeout) as info:
        kind_board.exec(code, timeout=5)  # the 8 lines come at once; 5 s for a loaded machine
    message = str(info.value)
    assert "code did not finish within 5 s [infrastructure fault]" in message, message
    assert "within 4.9" not in message and "bytes within" not in message, message
    # the last lines only, whole, in order
    assert message.endswith('the board printed: "tick 3\\ntick 4\\ntick 5\\ntick 6\\ntick 7"')
    assert not FRAMING.search(message), message
    assert info.value.tail.endswith(b"tick 7\r\n")  # the bytes themselves stay
    kind_board.repl.interrupt()
    assert kind_board.eval("i") == 7


def test_a_board_that_printed_nothing_says_so(kind_board: Board) -> None:
    with pytest.raises(BoardTimeout) as info:
        kind_board.exec("while True:\n    pass", timeout=1)
    message = str(info.value)
    assert message.endswith("the board printed nothing since the code was sent"), message
    assert not FRAMING.search(message), message
    kind_board.repl.interrupt()


def test_a_board_that_sent_nothing_at_all_says_so(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    sim = start_virtual_boards(1)[0]
    with Board.open(sim.port) as board:
        board.identity()
        sim.control.fault("hang")
        with pytest.raises(BoardTimeout) as info:
            board.exec("print('still there?')", timeout=1)
    message = str(info.value)
    assert message.endswith(
        "the board did not take the code within 1 s: none of it ran [infrastructure fault]; "
        "the board sent nothing since the code was offered"
    ), message


def test_a_link_that_stalls_while_the_code_is_sent_says_the_code_never_ran(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    """Not "did not finish": the board never had all of the code, so none of it ran."""
    sim = start_virtual_boards(1)[0]
    with Board.open(sim.port) as board:
        board.identity()
        sim.control.fault("stall", seconds=10)
        with pytest.raises(BoardTimeout) as info:
            board.exec("x = 1\n" * 3000, timeout=2)
    message = str(info.value)
    assert "the board did not take the code within 2 s: none of it ran" in message, message
    assert "did not finish" not in message, message
