"""``hil lab places``: the places of a host's boards on the coordinator, with their tags.

A place is named by the board id and matches the resource group its exporter publishes
(``<exporter>/<board id>/*``). Its tags carry the rack entry (:mod:`hil.labgrid.tags`) as it is
seen from another host. Drivers that only work on the board's own host are left out, and the
command says so: a ``command`` (it would run on the client's host), a virtual board's ``sim``
drivers (its control socket is local; its place offers power through the exporter's
``NetworkPowerPort`` instead, the ``labgrid`` driver), and flashers other than ``esptool`` (which
speaks RFC 2217; UF2 and DFU need the board's USB on the host that runs them). A reset left out
becomes ``machine.reset`` on the REPL. Running it again updates tags and matches and keeps a
place's state (a quarantined place stays quarantined).
"""

from __future__ import annotations

import dataclasses

from hil import drivers
from hil.labgrid.client import Coordinator
from hil.labgrid.tags import READY, STATE, place_tags, tag_key
from hil.rack.inventory import Board, DriverRef

#: Flashers that reach a board through its network port.
NETWORK_FLASHERS = ("esptool",)


def remote_entry(board: Board) -> tuple[Board, list[str]]:
    """The rack entry as a client on another host can use it, and what was left out."""
    changes: dict[str, object] = {}
    left_out = []
    if not drivers.lookup("reset", board.reset.name).works_remotely:
        changes["reset"] = DriverRef("machine.reset")
        left_out.append(f"reset {board.reset.name}")
    if _has_power_switch(board):  # served by the exporter as the place's NetworkPowerPort
        changes["power"] = DriverRef("labgrid")
    elif board.power is not None and not drivers.lookup("power", board.power.name).works_remotely:
        changes["power"] = None
        left_out.append(f"power {board.power.name}")
    if board.flasher is not None and board.flasher.name not in NETWORK_FLASHERS:
        changes.update(flasher=None, firmware=None)
        left_out.append(f"flasher {board.flasher.name}")
    return dataclasses.replace(board, **changes), left_out


def _has_power_switch(board: Board) -> bool:
    """Whether the exporter serves this board's power."""
    from hil.labgrid.exporter import power_switches

    return bool(power_switches((board,)))


def sync_places(coordinator: Coordinator, boards: tuple[Board, ...], exporter: str) -> list[str]:
    """Create or update one place per board; returns one line per place saying what changed."""
    existing = coordinator.places()
    lines = []
    for board in boards:
        place = existing.get(board.id)
        entry, left_out = remote_entry(board)
        tags = place_tags(entry)
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
        note = (
            f" (left out, they work on this host only: {', '.join(left_out)})" if left_out else ""
        )
        lines.append(f"{board.id}: {what}, matches {pattern}, platform {board.platform}{note}")
    return lines
