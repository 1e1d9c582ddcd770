"""``hil lab places``: the places of a host's boards on the coordinator, with their tags.

A place is named by the board id and matches the resource group its exporter publishes
(``<exporter>/<board id>/*``). Its tags carry the rack entry (:mod:`hil.labgrid.tags`) as it is
seen from another host: a virtual board's ``sim`` drivers only work on its own host, so its place
offers power through the exporter's ``NetworkPowerPort`` (the ``labgrid`` driver), resets with
``machine.reset`` on the REPL, and has no flasher. Running it again updates tags and matches and
keeps a place's state (a quarantined place stays quarantined).
"""

from __future__ import annotations

import dataclasses

from hil.labgrid.client import Coordinator
from hil.labgrid.tags import ENTRY, READY, STATE, place_tags, tag_key
from hil.rack.inventory import Board, DriverRef


def remote_entry(board: Board) -> Board:
    """The rack entry as a client on another host can use it."""
    if board.port_spec.kind != "sim":
        return board
    return dataclasses.replace(
        board,
        reset=DriverRef("machine.reset"),
        power=DriverRef("labgrid"),
        flasher=None,
        firmware=None,
    )


def sync_places(coordinator: Coordinator, boards: tuple[Board, ...], exporter: str) -> list[str]:
    """Create or update one place per board; returns one line per place saying what changed."""
    existing = coordinator.places()
    lines = []
    for board in boards:
        place = existing.get(board.id)
        tags = place_tags(remote_entry(board))
        pattern = f"{exporter}/{board.id}/*"
        if place is None:
            coordinator.add_place(board.id)
            tags[STATE] = READY
            what = "created"
        else:
            what = "updated"
            if STATE not in place.tags:
                tags[STATE] = READY
            # tags of an earlier entry that this one no longer has (a removed tag or feature)
            for key in place.tags:
                if key.startswith((tag_key("tag_", ""), tag_key("cap_", ""))) and key not in tags:
                    tags[key] = ""
        patterns = {"/".join(m[:3]) for m in (place.matches if place else ())}
        if pattern not in patterns:
            coordinator.add_match(board.id, pattern)
        coordinator.set_tags(board.id, tags)
        lines.append(f"{board.id}: {what}, matches {pattern}, platform {board.platform}")
    return lines


__all__ = ["ENTRY", "remote_entry", "sync_places"]
