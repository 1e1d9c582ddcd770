"""A quarantine that every run sees: the place's ``hil`` tag and its comment.

On a local rack a board is out for the rest of one run. A place of a shared lab is out until a
person has looked at it: the tag ``hil=quarantined`` keeps reservations (which ask for
``hil=ready``) from ever allocating it, and the comment, which ``labgrid-client places`` and
``hil lab status`` show, says why, when and who. ``hil lab clear PLACE`` puts it back.

Only the holder of a place marks it: a process whose lease was taken back (its heartbeat was
late) cannot tell a broken board from a board that is another run's now, so it takes the place
out for itself only, in memory.

The interface is the one the harness uses of :class:`hil.rack.quarantine.Quarantine`.
"""

from __future__ import annotations

import os
import socket
import time

from hil.labgrid.client import Coordinator
from hil.labgrid.tags import QUARANTINED, READY, STATE
from hil.rack.quarantine import QuarantineRecord

COMMENT_PREFIX = "hil quarantine: "


class PlaceQuarantine:
    """Quarantined places of the coordinator, by place name (= board id)."""

    def __init__(
        self, coordinator: Coordinator, *, worker: str | None = None, holder: str | None = None
    ) -> None:
        self.coordinator = coordinator
        self.worker = worker
        self.holder = holder
        #: places out for this process only (it did not hold them when it gave up on them)
        self._local: dict[str, QuarantineRecord] = {}

    def add(self, board_id: str, reason: str) -> QuarantineRecord:
        """Take the place out for every run; the first reason given is kept."""
        existing = self.get(board_id)
        if existing is not None:
            return existing
        reason = " ".join(reason.split()) or "no reason given"
        record = QuarantineRecord(
            board_id, reason, time.time(), os.getpid(), socket.gethostname(), self.worker
        )
        place = self.coordinator.places().get(board_id)
        if self.holder is not None and (place is None or place.acquired != self.holder):
            self._local[board_id] = record
            return record
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.since))
        self.coordinator.set_tags(board_id, {STATE: QUARANTINED})
        by = f"pid {record.pid} on {record.host}" + (f" ({self.worker})" if self.worker else "")
        self.coordinator.set_comment(
            board_id, f"{COMMENT_PREFIX}{reason} [{stamp} UTC by {by}]"[:1000]
        )
        return record

    def get(self, board_id: str) -> QuarantineRecord | None:
        if board_id in self._local:
            return self._local[board_id]
        place = self.coordinator.places().get(board_id)
        if place is None or place.tags.get(STATE) != QUARANTINED:
            return None
        return QuarantineRecord(board_id, _reason(place.comment), place.changed)

    def __contains__(self, board_id: object) -> bool:
        return isinstance(board_id, str) and self.get(board_id) is not None

    def records(self) -> dict[str, QuarantineRecord]:
        found = {
            name: QuarantineRecord(name, _reason(place.comment), place.changed)
            for name, place in self.coordinator.places().items()
            if place.tags.get(STATE) == QUARANTINED
        }
        return {**found, **self._local}

    def clear(self, board_id: str) -> None:
        """Put the place back into service (what a person does after looking at the board)."""
        self.coordinator.set_tags(board_id, {STATE: READY})
        self.coordinator.set_comment(board_id, "")


def _reason(comment: str) -> str:
    return comment.removeprefix(COMMENT_PREFIX) or "quarantined (no comment)"
