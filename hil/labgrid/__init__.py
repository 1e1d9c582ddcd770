"""Racks across hosts: boards leased as places of a labgrid coordinator.

labgrid (PyPI ``labgrid``, the ``labgrid`` extra) brokers *places*: a board and its resources,
with tags. An exporter on each host publishes the board's serial port through ser2net (RFC 2217)
and, where it has one, a network power switch. This package turns places into rack entries and
leases them through the coordinator, so a run keeps everything a local rack does.

One module per job:

* :mod:`hil.labgrid.client`: a small synchronous session with the coordinator (gRPC);
* :mod:`hil.labgrid.holder`: who holds a place (host, pid) and whether that holder is gone;
* :mod:`hil.labgrid.tags`: a rack entry as place tags, and back; a selector as a reservation filter;
* :mod:`hil.labgrid.leases`: leases through reservations and acquisition, with a heartbeat;
* :mod:`hil.labgrid.reclaim`: releasing places whose holder died (the bound is stated there);
* :mod:`hil.labgrid.quarantine`: a quarantine that other runs see (a tag and the comment);
* :mod:`hil.labgrid.drivers`: the ``labgrid:`` port and the ``labgrid`` power driver;
* :mod:`hil.labgrid.power_server`: the ``rest`` power switch of virtual boards, on loopback;
* :mod:`hil.labgrid.exporter`, :mod:`hil.labgrid.places`, :mod:`hil.labgrid.status`: ``hil lab``;
* :mod:`hil.labgrid.session`: what the pytest plugin builds for ``--hil-labgrid``.
* :mod:`hil.labgrid.testlab`: a whole lab on one machine (tests, benchmarks).
"""

from __future__ import annotations

from hil.errors import ConfigError


def require() -> None:
    """Refuse, in one line, to use a coordinator when labgrid is not installed."""
    try:
        import grpc  # noqa: F401
        import labgrid.remote.generated.labgrid_coordinator_pb2  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f"labgrid is not installed ({error}); "
            "install the extra: pip install 'mpy-hil[labgrid]'",
            where="--hil-labgrid",
        ) from None
