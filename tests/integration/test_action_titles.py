"""The actions of a ``put`` on a real virtual board are titled by what a person did: the put
and, inside it, the checksum of the file it puts (not of its temp file) (issue 14)."""

from __future__ import annotations

from collections.abc import Callable

from hil.board import Board
from hil.sim import SimBoard
from hil.transcript import Direction, action_record


def test_the_checksum_inside_a_put_names_the_files_destination(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    sim = start_virtual_boards(1)[0]
    with Board.open(sim.port) as board:
        board.probe()
        mark = board.transcript.mark()
        board.put(b"DEBUG = True\n", "/config.py")
        titles = [
            str(action_record(entry)["title"])
            for entry in board.transcript.entries(mark)
            if entry.direction is Direction.BEGIN
        ]
        assert board.get("/config.py") == b"DEBUG = True\n"
    assert titles == ["put /config.py (13 B)", "checksum /config.py"], titles
