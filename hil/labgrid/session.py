"""What a pytest process builds for ``--hil-labgrid HOST:PORT``: the rack of the coordinator's
places, a lease manager and a quarantine over one session with the coordinator.

The rack is the places set up by ``hil lab places`` that are in service when the run starts. The
controller of an xdist run reads it and hands the names to its workers, so that every worker
collects the same tests even when a place is quarantined meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hil.errors import ConfigError
from hil.labgrid.client import Coordinator
from hil.labgrid.holder import holder_name
from hil.labgrid.leases import PlaceLeaseManager
from hil.labgrid.quarantine import PlaceQuarantine
from hil.labgrid.tags import ENTRY, READY, STATE, board_of
from hil.rack.inventory import Board, Rack

#: workerinput key: the place names the controller's rack holds.
PLACES_KEY = "hil_labgrid_places"

_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


def check_address(address: str) -> str:
    """``host:port`` of the coordinator, or a one-line usage error."""
    address = address.strip()
    if not _ADDRESS.match(address):
        raise ConfigError(
            f"expected the coordinator as HOST:PORT, got {address!r}", where="--hil-labgrid"
        )
    return address


def rack_of(coordinator: Coordinator, names: list[str] | None = None) -> Rack:
    """The rack of our places in service (or exactly ``names``, as the controller saw them)."""
    places = coordinator.places()
    boards: list[Board] = []
    for name in sorted(places) if names is None else names:
        place = places.get(name)
        if place is None or ENTRY not in place.tags:
            continue
        if names is None and place.tags.get(STATE) != READY:
            continue
        boards.append(board_of(name, place.tags, f"labgrid:{coordinator.address}/{name}"))
    if not boards:
        raise ConfigError(
            "the coordinator has no place in service set up by `hil lab places`",
            where=f"coordinator {coordinator.address}",
        )
    return Rack(boards=tuple(boards))


@dataclass
class LabSession:
    coordinator: Coordinator
    rack: Rack
    manager: PlaceLeaseManager
    quarantine: PlaceQuarantine

    @classmethod
    def open(
        cls,
        address: str,
        *,
        run: str,
        worker: str | None,
        owner_pid: int | None,
        names: list[str] | None = None,
    ) -> LabSession:
        from hil.labgrid import require

        require()
        holder = holder_name(run=run, worker=worker)
        coordinator = Coordinator(check_address(address), name=str(holder)).connect()
        try:
            rack = rack_of(coordinator, names)
        except BaseException:
            coordinator.close()
            raise
        quarantine = PlaceQuarantine(coordinator, worker=worker, holder=str(holder))
        manager = PlaceLeaseManager(
            coordinator, rack.boards, holder, quarantine=quarantine, owner_pid=owner_pid
        )
        return cls(coordinator, rack, manager, quarantine)

    def close(self) -> None:
        self.manager.close()
        self.coordinator.close()
