"""Leases on places: a reservation (fair, ordered), then the acquisition, then a heartbeat.

The interface is the one the harness uses of :class:`hil.rack.leases.LeaseManager`:
``acquire(selector, timeout=...)`` returns a lease with ``.board`` and ``.release()``.

Taking a board: we create a reservation whose filter is the selector as tags
(:func:`hil.labgrid.tags.reservation_filter`, which includes ``hil=ready``); labgrid's scheduler
allocates places to waiting reservations by priority and age, so runs competing for scarce boards
are served in order. We poll it; once a place is allocated to us we acquire it (the exporter
starts ser2net) and cancel the reservation, so that a release frees the place at once.

Keeping it: one heartbeat thread per process stamps each held place (:data:`BEAT`) every
:data:`~hil.labgrid.reclaim.BEAT_INTERVAL` seconds and checks the place is still ours. It stops
and releases everything when the run's main process is gone (an xdist worker whose controller was
killed). A holder that dies stops beating, and :mod:`hil.labgrid.reclaim` takes its places back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from hil.errors import BoardQuarantined, InfrastructureError, LeaseTimeout
from hil.labgrid.client import Coordinator, CoordinatorError
from hil.labgrid.holder import HolderName
from hil.labgrid.quarantine import PlaceQuarantine
from hil.labgrid.reclaim import BEAT_INTERVAL, Reclaimer
from hil.labgrid.tags import BEAT, reservation_filter
from hil.processes import pid_alive
from hil.rack.inventory import Board
from hil.rack.leases import NoMatchingBoard
from hil.rack.selector import Selector

log = logging.getLogger("hil.labgrid")

#: How often a waiting run polls its reservation (and looks for dead holders to reclaim).
POLL_INTERVAL = 0.5


class PlaceLease:
    """A place held by this process until :meth:`release` (or until the heartbeat loses it)."""

    def __init__(self, board: Board, manager: PlaceLeaseManager) -> None:
        self.board = board
        self.place = board.id
        self.holder = manager.holder
        self._manager = manager
        self.lost: str | None = None
        self._released = False

    @property
    def held(self) -> bool:
        return not self._released and self.lost is None

    def release(self) -> None:
        """Give the place back; calling it again does nothing. A coordinator that is gone is
        logged, not raised: the reclaimer frees the place once our heartbeat stops."""
        if self._released:
            return
        self._released = True
        self._manager._forget(self)
        try:
            self._manager.coordinator.release(self.place, fromuser=str(self.holder))
        except CoordinatorError as error:
            log.warning("could not release place %s: %s", self.place, error)

    def __enter__(self) -> PlaceLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<PlaceLease {self.place} {'held' if self.held else 'released'} by {self.holder}>"


class PlaceLeaseManager:
    """Hands out places of ``boards`` (the run's rack, from the coordinator) to this process."""

    def __init__(
        self,
        coordinator: Coordinator,
        boards: tuple[Board, ...],
        holder: HolderName,
        *,
        quarantine: PlaceQuarantine,
        owner_pid: int | None = None,
        poll_interval: float = POLL_INTERVAL,
        beat_interval: float = BEAT_INTERVAL,
    ) -> None:
        self.coordinator = coordinator
        self.boards = boards
        self.holder = holder
        self.quarantine = quarantine
        self.owner_pid = owner_pid
        self.poll_interval = poll_interval
        self.beat_interval = beat_interval
        self.reclaimer = Reclaimer(coordinator)
        self._held: dict[str, PlaceLease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # --- taking a place ---------------------------------------------------------------------

    def _check_selectable(self, selector: Selector) -> None:
        matching = selector.select(self.boards)
        if not matching:
            raise NoMatchingBoard(selector.explain(self.boards), where="lease")
        out = self.quarantine.records()
        if all(board.id in out for board in matching):
            states = "; ".join(f"{b.id}: {out[b.id].reason}" for b in matching)
            raise BoardQuarantined(
                f"every place matching {selector} is quarantined: {states}",
                where=f"coordinator {self.coordinator.address}",
            )

    def acquire(self, selector: Selector | None = None, *, timeout: float) -> PlaceLease:
        """A lease on a place matching ``selector``, waiting up to ``timeout`` seconds.

        Raises :class:`NoMatchingBoard` when no place of the run can match, ``BoardQuarantined``
        when all that can are quarantined, ``LeaseTimeout`` naming their holders when the time
        is up, ``CoordinatorError`` when the coordinator is gone.
        """
        selector = selector or Selector()
        self._check_selectable(selector)
        wanted = self._filters(selector)
        deadline = time.monotonic() + timeout
        tokens = [self.coordinator.reserve(f).token for f in wanted]
        try:
            while True:
                for index, token in enumerate(tokens):
                    reservation = self.coordinator.poll(token)
                    if reservation.state == "allocated" and reservation.allocations:
                        lease = self._take(reservation.allocations[0], selector)
                        if lease is not None:
                            return lease
                    elif reservation.state in ("expired", "invalid"):
                        self.coordinator.cancel(token)
                        tokens[index] = self.coordinator.reserve(wanted[index]).token
                self.reclaimer.scan()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(self.poll_interval, remaining))
                self._check_selectable(selector)
        finally:
            for token in tokens:
                with contextlib.suppress(CoordinatorError):
                    self.coordinator.cancel(token)
        raise LeaseTimeout(
            f"no place matching {selector} became free within {timeout:g} s: "
            f"{self.describe(selector)}",
            where=f"coordinator {self.coordinator.address}",
        )

    def _filters(self, selector: Selector) -> list[dict[str, str]]:
        """One reservation filter for a selector that tags express; else one per candidate
        place (a group of equivalent boards is ours, not a tag): the first allocated wins."""
        base = reservation_filter(selector)
        if getattr(selector, "group", None) is None:
            return [base]
        out = self.quarantine.records()
        return [{**base, "name": b.id} for b in selector.select(self.boards) if b.id not in out]

    def _take(self, place: str, selector: Selector) -> PlaceLease | None:
        board = next((b for b in self.boards if b.id == place), None)
        self.coordinator.acquire(place)
        if board is None or not selector.matches(board):  # not in this run's rack (added later)
            self.coordinator.release(place, fromuser=str(self.holder))
            return None
        lease = PlaceLease(board, self)
        with self._lock:
            self._held[place] = lease
        self._stamp(lease)
        self._start_heartbeat()
        return lease

    def describe(self, selector: Selector) -> str:
        """Who holds each matching place, for a timeout message."""
        places = self.coordinator.places()
        parts = []
        for board in selector.select(self.boards):
            place = places.get(board.id)
            if place is None:
                parts.append(f"{board.id} gone from the coordinator")
            elif place.acquired:
                parts.append(f"{board.id} held by {place.acquired}")
            elif place.reservation:
                parts.append(f"{board.id} reserved ({place.reservation})")
            else:
                parts.append(f"{board.id} {place.tags.get('hil', 'not ours')}")
        return "; ".join(parts) or "no place"

    # --- keeping it -------------------------------------------------------------------------

    def _forget(self, lease: PlaceLease) -> None:
        with self._lock:
            if self._held.get(lease.place) is lease:
                del self._held[lease.place]

    def _stamp(self, lease: PlaceLease) -> None:
        self.coordinator.set_tags(lease.place, {BEAT: str(int(time.time()))})

    def _start_heartbeat(self) -> None:
        if self._beat is not None and self._beat.is_alive():
            return
        self._beat = threading.Thread(target=self._heartbeat, name="hil-labgrid-beat", daemon=True)
        self._beat.start()

    def _owner_gone(self) -> bool:
        if self.owner_pid is None or self.owner_pid == os.getpid():
            return False
        return pid_alive(self.owner_pid) is False  # "cannot tell" keeps the places

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.beat_interval):
            if self._owner_gone():
                log.warning("the run's main process %s is gone: releasing places", self.owner_pid)
                self.close()
                return
            with self._lock:
                leases = list(self._held.values())
            try:
                places = self.coordinator.places()
            except InfrastructureError as error:
                for lease in leases:
                    lease.lost = f"coordinator unreachable: {error.what}"
                continue
            for lease in leases:
                place = places.get(lease.place)
                if place is None or place.acquired != str(self.holder):
                    holder = place.acquired if place is not None else None
                    lease.lost = f"place {lease.place} is no longer ours (holder: {holder})"
                    self._forget(lease)
                    continue
                with contextlib.suppress(InfrastructureError):
                    self._stamp(lease)

    def close(self) -> None:
        """Release every place and stop the heartbeat."""
        self._stop.set()
        with self._lock:
            leases = list(self._held.values())
        for lease in leases:
            lease.release()
