"""Releasing what a dead holder left: places acquired, reservations waiting or allocated.

labgrid keeps a place acquired until someone releases it; a run killed with ``kill -9``, or a host
that died, never will. So every holder of ours beats: it stamps its places' ``hil_beat`` tag every
:data:`BEAT_INTERVAL` seconds, and polls its reservation (which moves the reservation's timeout).
A :class:`Reclaimer` watches places and reservations of mpy-hil holders and takes back

* at once, those whose holder ran on this host and whose process is gone (host and pid are in the
  holder's name, :mod:`hil.labgrid.holder`);
* from any host, those whose beat has not changed for :data:`STALE_AFTER` seconds of the watcher's
  own clock (no clock of two hosts is ever compared).

Releases are conditional on the holder (``fromuser``), so a place that changed hands meanwhile is
never taken from its new holder. Who watches: every run that waits for a board (each time it
polls) and every ``hil lab exporter`` (every :data:`SCAN_INTERVAL` seconds, for all places).

The bound: a place whose holder died is free again at most ``BEAT_INTERVAL + STALE_AFTER +
SCAN_INTERVAL`` = 30 s after the holder's death (sooner on the holder's own host), as long as a
``hil lab exporter`` or a waiting run is connected to the coordinator.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from hil.labgrid.client import Coordinator, CoordinatorError
from hil.labgrid.holder import parse_holder
from hil.labgrid.tags import BEAT

log = logging.getLogger("hil.labgrid")

BEAT_INTERVAL = 5.0
STALE_AFTER = 20.0
SCAN_INTERVAL = 5.0
#: The longest a dead holder keeps a place (stated in the README; tests check it).
RECLAIM_BOUND = BEAT_INTERVAL + STALE_AFTER + SCAN_INTERVAL


class Reclaimer:
    """Watches holders of places and reservations; see the module docstring."""

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        stale_after: float = STALE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coordinator = coordinator
        self.stale_after = stale_after
        self._clock = clock
        #: what we last saw of each place's holder and beat, and since when (our clock)
        self._places: dict[str, tuple[str, str, float]] = {}
        self._reservations: dict[str, tuple[float, float]] = {}

    def scan(self) -> list[str]:
        """One look at everything; returns what was taken back, one line each."""
        done = self._scan_places()
        done += self._scan_reservations()
        for line in done:
            log.warning("reclaimed %s", line)
        return done

    def _stale(self, seen: dict, key: str, state: tuple, now: float) -> bool:
        previous = seen.get(key)
        if previous is None or previous[:-1] != state:
            seen[key] = (*state, now)
            return False
        return now - previous[-1] >= self.stale_after

    def _scan_places(self) -> list[str]:
        done = []
        now = self._clock()
        places = self.coordinator.places()
        for name in set(self._places) - set(places):
            del self._places[name]
        for place in places.values():
            holder = parse_holder(place.acquired)
            if holder is None:
                self._places.pop(place.name, None)
                continue
            alive = holder.is_alive()
            beat = place.tags.get(BEAT, "")
            if alive is False:
                why = f"its holder {holder} is gone"
            elif alive is None and self._stale(self._places, place.name, (str(holder), beat), now):
                why = f"no heartbeat from {holder} for {self.stale_after:g} s"
            else:
                continue
            with contextlib.suppress(CoordinatorError):
                self.coordinator.release(place.name, fromuser=str(holder))
                done.append(f"place {place.name}: {why}")
            self._places.pop(place.name, None)
        return done

    def _scan_reservations(self) -> list[str]:
        done = []
        now = self._clock()
        reservations = {r.token: r for r in self.coordinator.reservations()}
        for token in set(self._reservations) - set(reservations):
            del self._reservations[token]
        for res in reservations.values():
            holder = parse_holder(res.owner)
            if holder is None or res.state not in ("waiting", "allocated"):
                continue
            alive = holder.is_alive()
            if alive is False:
                why = f"its owner {holder} is gone"
            elif alive is None and self._stale(self._reservations, res.token, (res.timeout,), now):
                why = f"not polled by {holder} for {self.stale_after:g} s"
            else:
                continue
            with contextlib.suppress(CoordinatorError):
                self.coordinator.cancel(res.token)
                done.append(f"reservation {res.token}: {why}")
            self._reservations.pop(res.token, None)
        return done
