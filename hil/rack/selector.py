"""Which boards a test can run on: a selector by id, platform, tags and capabilities.

``@pytest.mark.board(platform="esp32", tags=["wifi"], capabilities=["sd"])`` becomes a
:class:`Selector`. When no board of the rack can ever match, :meth:`Selector.explain` says why for
each board, so that the skip reason tells the user what to change rather than just "no board".

A capability matches what the rack declares for a board *or* what the board's probe found
(``sys.modules``, ``hashlib``, an SD card, ...). Before a board has been asked, a capability it
does not declare cannot rule it out: :meth:`Selector.mismatch` takes the probed features when they
are known, and the test is then skipped naming the board and what it lacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from hil.rack._validate import expect_str, expect_str_list
from hil.rack.inventory import Board, expect_name, expect_platform


@dataclasses.dataclass(frozen=True)
class Selector:
    """What a test needs of a board; every given criterion must hold (``tags``: all of them).

    The default selector matches every board.
    """

    platform: str | None = None
    tags: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    id: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.platform is not None:
            object.__setattr__(self, "platform", expect_platform("platform", self.platform))
        object.__setattr__(self, "tags", frozenset(expect_str_list("tags", _listed(self.tags))))
        capabilities = expect_str_list("capabilities", _listed(self.capabilities))
        for index, name in enumerate(capabilities):
            expect_name(f"capabilities[{index}]", name, "capability")
        object.__setattr__(self, "capabilities", frozenset(capabilities))
        if self.id is not None:
            expect_str("id", self.id)
        if self.group is not None:
            expect_str("group", self.group)

    def mismatch(self, board: Board, probed: frozenset[str] | None = None) -> str | None:
        """Why ``board`` does not match, or None when it does (or may: see the module doc).

        ``probed``: the features the board's probe found; None while it has not been asked.
        """
        if self.id is not None and board.id != self.id:
            return "another id"
        if self.group is not None and board.group_id != self.group:
            return f"group {board.group_id}"
        if self.platform is not None and board.platform != self.platform:
            return f"platform {board.platform}"
        missing_tags = sorted(self.tags - set(board.tags))
        if missing_tags:
            return f"lacks tag{'s' if len(missing_tags) > 1 else ''} {', '.join(missing_tags)}"
        missing = sorted(self.capabilities - board.capabilities.names - (probed or frozenset()))
        if missing and probed is not None:
            return f"lacks capabilit{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)}"
        return None

    def matches(self, board: Board, probed: frozenset[str] | None = None) -> bool:
        return self.mismatch(board, probed) is None

    def narrowed(self, **criteria: str) -> Selector:
        """The same selector, also requiring ``id=`` or ``group=``."""
        return dataclasses.replace(self, **criteria)

    def select(self, boards: Iterable[Board]) -> tuple[Board, ...]:
        """The matching boards, in rack order."""
        return tuple(board for board in boards if self.matches(board))

    def explain(self, boards: Iterable[Board]) -> str:
        """One line saying why no board matches (for a skip reason); empty if some board does."""
        boards = tuple(boards)
        if self.select(boards):
            return ""
        why = "; ".join(f"{board.id}: {self.mismatch(board)}" for board in boards)
        return f"no board matches {self}: {why or 'the rack is empty'}"

    def __str__(self) -> str:
        parts = []
        if self.id is not None:
            parts.append(f"id={self.id!r}")
        if self.group is not None:
            parts.append(f"group={self.group!r}")
        if self.platform is not None:
            parts.append(f"platform={self.platform!r}")
        if self.tags:
            parts.append(f"tags={sorted(self.tags)!r}")
        if self.capabilities:
            parts.append(f"capabilities={sorted(self.capabilities)!r}")
        return f"({', '.join(parts)})" if parts else "(any board)"


def _listed(value: object) -> object:
    """Sets are fine as selector input; validation wants a sequence."""
    return sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
