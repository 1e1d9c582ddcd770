"""A small synchronous session with a labgrid coordinator, over its gRPC API.

Why our own and not labgrid's ``ClientSession``: that one is asyncio-based and built for its
command line; a pytest worker needs blocking calls with deadlines from plain threads (a test, the
heartbeat). We speak the same protocol through labgrid's generated stubs: a client stream that
announces our name (the coordinator records it as the holder of what we acquire) and subscribes
to places and resources, plus unary calls for everything that changes state.

Every call has a deadline. A coordinator that is down, or that refuses, is an infrastructure
error naming the coordinator's address and the call.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from hil.errors import InfrastructureError

#: Deadline of one call to the coordinator (it answers in milliseconds when it is up).
CALL_TIMEOUT = 10.0

#: Keepalive pings on the channel, so that a coordinator that vanished is noticed within
#: seconds (the coordinator allows pings every 5 s). Each session has its own connection: the
#: coordinator tells client sessions apart by their peer address, and gRPC would otherwise let
#: two sessions of one process share one.
_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.keepalive_time_ms", 7500),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.http2.ping_timeout_ms", 5000),
    ("grpc.http2.max_pings_without_data", 0),
]

#: labgrid's reservation states (``labgrid.remote.common.ReservationState``).
RESERVATION_STATES = {0: "waiting", 1: "allocated", 2: "acquired", 3: "expired", 4: "invalid"}


class CoordinatorError(InfrastructureError):
    """The coordinator could not be reached, or refused a request."""


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource an exporter publishes: ``exporter/group/cls/name`` with its parameters."""

    exporter: str
    group: str
    cls: str
    name: str
    params: Mapping[str, Any]
    acquired: str
    avail: bool

    @property
    def path(self) -> str:
        return f"{self.exporter}/{self.group}/{self.cls}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Place:
    """A place as the coordinator has it (tags, comment, holder, matching resources)."""

    name: str
    tags: Mapping[str, str]
    comment: str
    matches: tuple[tuple[str, str, str, str | None], ...]
    acquired: str | None
    acquired_resources: tuple[str, ...]
    reservation: str | None
    changed: float

    def matches_resource(self, resource: Resource) -> bool:
        """Whether ``resource`` belongs to this place (labgrid's match rules: fnmatch patterns)."""
        for exporter, group, cls, name in self.matches:
            if not fnmatch.fnmatchcase(resource.exporter, exporter):
                continue
            if not fnmatch.fnmatchcase(resource.group, group):
                continue
            if not fnmatch.fnmatchcase(resource.cls, cls):
                continue
            if name is not None and not fnmatch.fnmatchcase(resource.name, name):
                continue
            return True
        return False


@dataclasses.dataclass(frozen=True)
class Reservation:
    owner: str
    token: str
    state: str
    filters: Mapping[str, str]
    allocations: tuple[str, ...]
    timeout: float


def _value(pb: Any) -> Any:
    kind = pb.WhichOneof("kind")
    return None if kind is None else getattr(pb, kind)


class Coordinator:
    """One session with the coordinator at ``address`` (``host:port``), under ``name``.

    ``name`` is what the coordinator records as the holder of places acquired through this
    session (labgrid shows it as ``host/user``); see :mod:`hil.labgrid.holder`. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, address: str, *, name: str, timeout: float = CALL_TIMEOUT) -> None:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb_grpc

        self.address = address
        self.name = name
        self.timeout = timeout
        self._grpc = grpc
        self._pb = pb
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = pb_grpc.CoordinatorStub(self._channel)
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._sync_ids = itertools.count(1)
        self._synced: dict[int, threading.Event] = {}
        self._resources: dict[tuple[str, str, str], Resource] = {}
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._stream: Any = None
        self._pump: threading.Thread | None = None

    # --- the client stream ------------------------------------------------------------------

    def connect(self) -> Coordinator:
        """Announce ourselves and wait until the coordinator has sent every resource."""
        pb = self._pb
        startup = pb.ClientInMessage()
        startup.startup.version = "mpy-hil"
        startup.startup.name = self.name
        self._outbox.put(startup)
        subscribe = pb.ClientInMessage()
        subscribe.subscribe.all_resources = True
        self._outbox.put(subscribe)
        self._stream = self._stub.ClientStream(self._requests())
        self._pump = threading.Thread(target=self._receive, name="hil-labgrid-stream", daemon=True)
        self._pump.start()
        try:
            self.sync()
        except BaseException:
            self.close()
            raise
        return self

    def _requests(self) -> Iterator[Any]:
        while True:
            message = self._outbox.get()
            if message is None:
                return
            yield message

    def _receive(self) -> None:
        try:
            for message in self._stream:
                for update in message.updates:
                    self._apply(update)
                if message.HasField("sync"):
                    event = self._synced.pop(message.sync.id, None)
                    if event is not None:
                        event.set()
            reason = "the coordinator ended the session"
        except self._grpc.RpcError as error:
            reason = _describe(error)
        except Exception as error:  # a malformed update must not kill the process silently
            reason = f"unreadable message from the coordinator: {error}"
        self._broken = reason
        for event in list(self._synced.values()):
            event.set()

    def _apply(self, update: Any) -> None:
        kind = update.WhichOneof("kind")
        if kind == "resource":
            pb = update.resource
            key = (pb.path.exporter_name, pb.path.group_name, pb.path.resource_name)
            params = {k: _value(v) for k, v in pb.params.items()}
            params["extra"] = {k: _value(v) for k, v in pb.extra.items()}
            resource = Resource(*key[:2], pb.cls, key[2], params, pb.acquired, pb.avail)
            with self._lock:
                self._resources[key] = resource
        elif kind == "del_resource":
            path = update.del_resource
            with self._lock:
                self._resources.pop((path.exporter_name, path.group_name, path.resource_name), None)

    def sync(self, timeout: float | None = None) -> None:
        """Wait until the coordinator has processed everything we sent (and we its updates)."""
        self._check_stream()
        ident = next(self._sync_ids)
        event = self._synced[ident] = threading.Event()
        message = self._pb.ClientInMessage()
        message.sync.id = ident
        self._outbox.put(message)
        if not event.wait(self.timeout if timeout is None else timeout):
            self._synced.pop(ident, None)
            raise CoordinatorError("no answer within the deadline (sync)", where=self.address)
        self._check_stream()

    def _check_stream(self) -> None:
        if self._broken is not None:
            raise CoordinatorError(f"session lost: {self._broken}", where=self.address)

    @property
    def alive(self) -> bool:
        return self._broken is None

    def resources(self) -> list[Resource]:
        """Every resource the exporters publish now (as of the last update received)."""
        with self._lock:
            return list(self._resources.values())

    def close(self) -> None:
        self._outbox.put(None)
        if self._stream is not None:
            self._stream.cancel()
        if self._pump is not None:
            self._pump.join(timeout=2.0)
        self._channel.close()

    def __enter__(self) -> Coordinator:
        return self if self._stream is not None else self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- unary calls ------------------------------------------------------------------------

    def _call(self, method: str, **fields: Any) -> Any:
        # once the session is known lost (keepalive: within seconds), fail at once rather than
        # make every later test wait out a call's deadline against a coordinator that is gone
        self._check_stream()
        request = getattr(self._pb, f"{method}Request")(**fields)
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            raise CoordinatorError(f"{method}: {_describe(error)}", where=self.address) from None

    def places(self) -> dict[str, Place]:
        """Every place, by name, as the coordinator has it now."""
        response = self._call("GetPlaces")
        return {p.name: _place(p) for p in response.places}

    def place(self, name: str) -> Place:
        found = self.places().get(name)
        if found is None:
            raise CoordinatorError(f"no place {name!r}", where=self.address)
        return found

    def place_resources(self, place: Place) -> list[Resource]:
        """The resources that belong to ``place``, by its matches."""
        return [r for r in self.resources() if place.matches_resource(r)]

    def add_place(self, name: str) -> None:
        self._call("AddPlace", name=name)

    def delete_place(self, name: str) -> None:
        self._call("DeletePlace", name=name)

    def add_match(self, place: str, pattern: str) -> None:
        self._call("AddPlaceMatch", placename=place, pattern=pattern)

    def delete_match(self, place: str, pattern: str) -> None:
        self._call("DeletePlaceMatch", placename=place, pattern=pattern)

    def set_tags(self, place: str, tags: Mapping[str, str]) -> None:
        """Set tags; an empty value deletes that tag."""
        self._call("SetPlaceTags", placename=place, tags=dict(tags))

    def set_comment(self, place: str, comment: str) -> None:
        self._call("SetPlaceComment", placename=place, comment=comment)

    def acquire(self, place: str) -> None:
        self._call("AcquirePlace", placename=place)

    def release(self, place: str, *, fromuser: str | None = None) -> None:
        """Release ``place``; with ``fromuser``, only if that holder still has it."""
        if fromuser is None:
            self._call("ReleasePlace", placename=place)
        else:
            self._call("ReleasePlace", placename=place, fromuser=fromuser)

    def reserve(self, filters: Mapping[str, str], *, prio: float = 0.0) -> Reservation:
        """A reservation for one place whose tags include ``filters``."""
        request_filter = self._pb.Reservation.Filter(filter=dict(filters))
        response = self._call("CreateReservation", filters={"main": request_filter}, prio=prio)
        return _reservation(response.reservation)

    def poll(self, token: str) -> Reservation:
        """The reservation's state; polling also keeps it from expiring (labgrid: 60 s)."""
        return _reservation(self._call("PollReservation", token=token).reservation)

    def cancel(self, token: str) -> None:
        self._call("CancelReservation", token=token)

    def reservations(self) -> list[Reservation]:
        return [_reservation(r) for r in self._call("GetReservations").reservations]


def _place(pb: Any) -> Place:
    matches = tuple(
        (m.exporter, m.group, m.cls, m.name if m.HasField("name") else None) for m in pb.matches
    )
    return Place(
        name=pb.name,
        tags=dict(pb.tags),
        comment=pb.comment,
        matches=matches,
        acquired=pb.acquired if pb.HasField("acquired") and pb.acquired else None,
        acquired_resources=tuple(pb.acquired_resources),
        reservation=pb.reservation if pb.HasField("reservation") and pb.reservation else None,
        changed=pb.changed,
    )


def _reservation(pb: Any) -> Reservation:
    main = pb.filters.get("main")
    allocated = pb.allocations.get("main", "")
    return Reservation(
        owner=pb.owner,
        token=pb.token,
        state=RESERVATION_STATES.get(pb.state, str(pb.state)),
        filters=dict(main.filter) if main is not None else {},
        allocations=tuple(name for name in allocated.split() if name),
        timeout=pb.timeout,
    )


def _describe(error: Any) -> str:
    """``unavailable: failed to connect``: the status and the coordinator's own words."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name.lower() if code is not None else "error"
    return f"{name}: {' '.join(str(details).split())}"
