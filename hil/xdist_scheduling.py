"""xdist scheduling for tests that run on boards.

A test runs once per matching board (``--hil-spread board``: ``test_x[vb0]``, ``test_x[vb1]``) or
once per group of equivalent boards (``--hil-spread group``: ``test_x[esp32+sd]``). Each worker
holds one board at a time, so:

* a board's tests go to one worker (a worker would otherwise trade its lease for every test);
* a group's tests are cut into as many units as the group has boards, so that as many workers
  as there are boards work on the group at once, each keeping its board; a worker that is done
  takes the next unit, of any group, as it frees up.

(xdist's own ``loadgroup`` cannot be used: it renames node ids in a way pytest 9 no longer
honours.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import pytest
from xdist.scheduler.loadscope import LoadScopeScheduling

from hil.rack import Board


def board_of(nodeid: str, board_ids: Iterable[str]) -> str | None:
    """The board (or group) whose id is one of the test's parameter ids (longest id wins)."""
    params = nodeid[nodeid.rfind("[") + 1 : -1] if nodeid.endswith("]") else ""
    if not params:
        return None
    for board in sorted(board_ids, key=len, reverse=True):
        if re.search(rf"(?:^|-){re.escape(board)}(?:-|$)", params):
            return board
    return None


class BoardScheduling(LoadScopeScheduling):
    """LoadScope with a board, or a share of a group, as the scope; other tests alone."""

    def __init__(
        self, config: pytest.Config, boards: Iterable[Board], log=None, reset_scope: str = "test"
    ) -> None:
        super().__init__(config, log)
        boards = tuple(boards)
        #: with a class or module reset scope, a class's or file's tests stay on one board
        self.reset_scope = reset_scope
        self.board_ids = tuple(board.id for board in boards)
        #: boards per group: a group's tests are cut into this many units
        self.group_sizes = Counter(board.group_id for board in boards)
        self._dealt: Counter[str] = Counter()
        self._scopes: dict[str, str] = {}
        self._shares: dict[tuple[str, str], int] = {}

    def _split_scope(self, nodeid: str) -> str:
        if nodeid not in self._scopes:  # asked again when a test completes: the same answer
            self._scopes[nodeid] = self._scope_of(nodeid)
        return self._scopes[nodeid]

    def _scope_of(self, nodeid: str) -> str:
        board = board_of(nodeid, self.board_ids)
        if board is not None:
            return f"board:{board}"
        group = board_of(nodeid, self.group_sizes)
        if group is not None:  # dealt round the group's boards, in collection order
            unit = (group, self._unit(nodeid))
            if unit not in self._shares:
                self._shares[unit] = self._dealt[group] % self.group_sizes[group]
                self._dealt[group] += 1
            return f"group:{group}:{self._shares[unit]}"
        return nodeid

    def _unit(self, nodeid: str) -> str:
        """What is dealt as one: a test, or its class or file when the board is reset once per
        class or file (the tests of a file share one board's state, as promised)."""
        parts = nodeid.split("::")
        if self.reset_scope == "class" and len(parts) > 2:
            return "::".join(parts[:2])
        if self.reset_scope in ("class", "module"):  # a test outside a class: its file
            return parts[0]
        return nodeid
