"""Drivers for boards of a labgrid place: the ``labgrid:`` port, and power (or a hard reset)
through the place's ``NetworkPowerPort``.

``labgrid:<coordinator host:port>/<place>`` resolves, right before each open, to the RFC 2217 URL
of the place's ``NetworkSerialPort`` (the ser2net its exporter started when the place was
acquired). A pty behind ser2net (a virtual board's port) cannot take DTR/RTS, and pyserial's
RFC 2217 client then waits in vain for ser2net to confirm them: for a port whose exported path is
a pty we add ``?ign_set_control``. A real USB port confirms them, so it is opened plainly (and our
transport never changes DTR/RTS on open, so ESP boards are not reset by it).

The power driver switches the place's ``NetworkPowerPort`` with labgrid's own backend for its
model (``labgrid.driver.power.<model>``), the way labgrid's ``NetworkPowerDriver`` does.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from hil.drivers.base import PortDriver, PowerDriver, ResetDriver
from hil.errors import ConfigError, InfrastructureError, LinkError

if TYPE_CHECKING:
    from hil.board import Board as BoardLink
    from hil.labgrid.client import Resource

#: Seconds the power stays off in a power cycle (long enough for a board's rails to drop).
OFF_SECONDS = 0.5


def split_value(value: str) -> tuple[str, str]:
    """``host:port/place`` -> (coordinator address, place); ``ValueError`` when malformed."""
    address, _, place = value.rpartition("/")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not place:
        raise ValueError(f"expected labgrid:<coordinator host:port>/<place>, got {value!r}")
    return address, place


def place_resources(value: str, *, where: str, held: bool = False) -> list[Resource]:
    """The resources of the place named by a ``labgrid:`` value, as the coordinator has them.

    ``held``: refuse unless this process may use the place now: it holds it (or a person holds
    it through labgrid's own client). A run whose lease was taken back must not reconnect to a
    board that is another run's now.
    """
    from hil.labgrid.client import Coordinator
    from hil.labgrid.holder import parse_holder, pid_space

    address, place = split_value(value)
    with Coordinator(address, name=f"{os.uname().nodename}/hil-resolve-{os.getpid()}") as session:
        info = session.places().get(place)
        if info is None:
            raise LinkError(f"the coordinator has no place {place!r}", where=where)
        if held:
            holder = parse_holder(info.acquired)
            if info.acquired is None:
                raise LinkError("the place is not acquired (our lease ended)", where=where)
            ours = (os.getpid(), socket.gethostname(), pid_space())
            if holder is not None and (holder.pid, holder.host, holder.where) != ours:
                raise LinkError(
                    f"the place is held by {info.acquired}, not by this process", where=where
                )
        return session.place_resources(info)


def serial_url(resource: Resource) -> str:
    """The pyserial URL of a ``NetworkSerialPort`` (see the module docstring for the option)."""
    host, port = resource.params.get("host"), resource.params.get("port")
    path = str((resource.params.get("extra") or {}).get("path") or "")
    url = f"rfc2217://{host}:{port}"
    return f"{url}?ign_set_control" if path.startswith("/dev/pts/") else url


class LabgridPort(PortDriver):
    """``labgrid:<coordinator>/<place>``: the place's exported serial port, found now."""

    scheme = "labgrid"

    def check(self) -> None:
        split_value(self.value)

    def resolve(self, *, where: str = "") -> str:
        ports = [
            r for r in place_resources(self.value, where=where) if r.cls == "NetworkSerialPort"
        ]
        if not ports:
            raise LinkError(
                "the place has no NetworkSerialPort now (its exporter is gone?)", where=where
            )
        ready = [r for r in ports if r.avail and r.params.get("port")]
        if not ready:
            raise LinkError(
                f"the serial port {ports[0].path} is not served (place not acquired, or its "
                "exporter lost the device)",
                where=where,
            )
        return serial_url(ready[0])


def _power_port(entry: Any) -> Resource:
    spec = entry.port_spec
    if spec.kind != "labgrid":
        raise ConfigError(f"the labgrid drivers need a labgrid: port, not {entry.port!r}")
    found = [
        r
        for r in place_resources(spec.value, where=entry.id, held=True)
        if r.cls == "NetworkPowerPort" and r.avail
    ]
    if not found:
        raise InfrastructureError(
            "the place has no available NetworkPowerPort (exporter gone?)", where=entry.id
        )
    return found[0]


def switch(resource: Resource, on: bool, *, where: str) -> None:
    """Switch a ``NetworkPowerPort`` with labgrid's backend for its model."""
    model = str(resource.params.get("model"))
    try:
        backend = importlib.import_module(f"labgrid.driver.power.{model}")
    except ImportError:
        raise ConfigError(f"labgrid has no power backend {model!r}", where=where) from None
    try:
        backend.power_set(
            resource.params.get("host"),
            resource.params.get("port"),
            resource.params.get("index"),
            on,
        )
    except Exception as error:  # requests, sockets, the switch's own errors: all infrastructure
        raise InfrastructureError(
            f"power {'on' if on else 'off'} through {resource.path} failed: {error}", where=where
        ) from error


def power_cycle(entry: Any) -> None:
    resource = _power_port(entry)
    switch(resource, False, where=entry.id)
    time.sleep(OFF_SECONDS)  # the board must be off this long: a pulse, not a wait
    switch(resource, True, where=entry.id)


class LabgridPower(PowerDriver):
    """Power-cycles a place's board through its ``NetworkPowerPort``."""

    name = "labgrid"
    works_remotely = True

    def cycle(self, link: BoardLink | None, *, timeout: float) -> None:
        power_cycle(self.entry)
        if link is not None:
            link.repl.reconnect(timeout)


class LabgridReset(ResetDriver):
    """A hard reset by power cycle, for a place whose board has no reset line of its own."""

    name = "labgrid"
    works_remotely = True

    def reset(self, link: BoardLink | None, *, timeout: float) -> None:
        power_cycle(self.entry)
        if link is not None:
            link.repl.reconnect(timeout)
