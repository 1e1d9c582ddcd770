"""``hil lab status``: the places of a coordinator, their holders, heartbeats and quarantine."""

from __future__ import annotations

import time

from hil.labgrid.client import Coordinator
from hil.labgrid.holder import parse_holder
from hil.labgrid.tags import BEAT, STATE


def rows(coordinator: Coordinator) -> list[dict[str, str]]:
    """One row per place: what a person needs to see who has which board and what is out."""
    places = coordinator.places()
    waiting: dict[str, int] = {}
    for res in coordinator.reservations():
        for name in res.allocations or ("(waiting)",):
            waiting[name] = waiting.get(name, 0) + 1
    found = []
    now = time.time()
    for name in sorted(places):
        place = places[name]
        resources = coordinator.place_resources(place)
        holder = place.acquired or "free"
        parsed = parse_holder(place.acquired)
        if parsed is not None:
            alive = parsed.is_alive()
            beat = place.tags.get(BEAT)
            age = f", beat {max(0, round(now - float(beat)))} s ago" if beat else ""
            holder += {False: " (process gone)", True: "", None: ""}[alive] + age
        found.append(
            {
                "place": name,
                "platform": place.tags.get("platform", "-"),
                "state": place.tags.get(STATE, "not ours"),
                "resources": ", ".join(
                    f"{r.exporter}/{r.cls}{'' if r.avail else ' (unavailable)'}" for r in resources
                )
                or "none (exporter gone?)",
                "holder": holder,
                "reserved": str(waiting.get(name, 0)) if place.reservation else "-",
                "comment": place.comment or "-",
            }
        )
    return found


def show(coordinator: Coordinator) -> None:
    from rich.console import Console
    from rich.table import Table

    found = rows(coordinator)
    table = Table(title=f"lab at {coordinator.address} ({len(found)} places)")
    for column in ("place", "platform", "state", "resources", "holder", "reserved", "comment"):
        table.add_column(column, overflow="fold")
    for row in found:
        table.add_row(*row.values())
    Console(width=200).print(table)
    waiting = sum(1 for r in coordinator.reservations() if r.state == "waiting")
    if waiting:
        print(f"{waiting} reservation(s) waiting for a place")
