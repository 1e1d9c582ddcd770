"""xdist scheduling that keeps each board's tests on one worker.

A test that uses a board runs once per matching board (``test_x[vb0]``, ``test_x[vb1]``). With
plain load balancing a worker would trade its lease for almost every test; grouping the tests by
board makes each worker keep one board, and each board serve one worker. (xdist's own
``loadgroup`` cannot be used: it renames node ids in a way pytest 9 no longer honours.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from xdist.scheduler.loadscope import LoadScopeScheduling


def board_of(nodeid: str, board_ids: Iterable[str]) -> str | None:
    """The board whose id is one of the test's parameter ids, if any (longest id wins)."""
    params = nodeid[nodeid.rfind("[") + 1 : -1] if nodeid.endswith("]") else ""
    if not params:
        return None
    for board in sorted(board_ids, key=len, reverse=True):
        if re.search(rf"(?:^|-){re.escape(board)}(?:-|$)", params):
            return board
    return None


class BoardScheduling(LoadScopeScheduling):
    """LoadScope with a board as the scope; tests without a board are scheduled alone."""

    def __init__(self, config: pytest.Config, board_ids: Iterable[str], log=None) -> None:
        super().__init__(config, log)
        self.board_ids = tuple(board_ids)

    def _split_scope(self, nodeid: str) -> str:
        board = board_of(nodeid, self.board_ids)
        return f"board:{board}" if board else nodeid
