"""``hil lab exporter``: a host's part of a rack file as a running labgrid exporter.

Each board becomes a resource group named by its id: its serial port, as its port driver says
(``PortDriver.labgrid_resource``: a ``RawSerialPort`` for a device path or a virtual board's pty,
a ``USBSerialPort`` matched by USB serial number for ``usb-serial:``, whatever a project's own
scheme says), and, for a port that comes with a power switch (``PortDriver.power_switch``: a
virtual board's control socket), a ``NetworkPowerPort`` of model ``rest`` served by
:class:`~hil.labgrid.power_server.PowerServer` on this host. labgrid's exporter publishes them and
starts ser2net for a serial port when its place is acquired.

ser2net batches what it reads from a serial port for a few character times before sending it on
(its ``chardelay``, on by default), which costs every REPL exchange several milliseconds: a
MicroPython exec is a handful of short exchanges. labgrid's exporter offers no way to set ser2net
options, so it finds, first on its PATH, a small shim (:func:`ser2net_shim`) that adds
``chardelay: false`` to the connection's options and runs the real ser2net.

The process also watches the coordinator for places whose holder died
(:mod:`hil.labgrid.reclaim`), so that the bound on a dead holder holds even when no run waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.drivers.base import PowerSwitch
from hil.errors import ConfigError, HilError
from hil.rack.inventory import Board, Rack
from hil.rack.ports import port_driver

log = logging.getLogger("hil.labgrid")


def select_boards(rack: Rack, ids: list[str] | None) -> tuple[Board, ...]:
    """The boards this host serves: those named, else all of the rack file."""
    if not ids:
        return rack.boards
    return tuple(rack.board(board_id) for board_id in ids)


def power_switches(boards: tuple[Board, ...]) -> dict[str, PowerSwitch]:
    """The boards whose port comes with a power switch, by id (in rack order)."""
    switches = {}
    for board in boards:
        if board.port_spec.kind in ("device", "url"):
            continue
        switch = port_driver(board.port_spec).power_switch()
        if switch is not None:
            switches[board.id] = switch
    return switches


def exporter_config(
    boards: tuple[Board, ...], power_url: str | None, powered: tuple[str, ...] = ()
) -> dict[str, Any]:
    """labgrid's exporter configuration for ``boards`` (a mapping; written as YAML).

    ``powered``: the ids of the boards whose switch the power server at ``power_url`` serves,
    in its index order."""
    config: dict[str, Any] = {}
    for board in boards:
        spec = board.port_spec
        group: dict[str, Any] = {}
        if spec.kind == "device":
            group["RawSerialPort"] = {"port": spec.value, "speed": board.baudrate}
        elif spec.kind == "url":
            raise ConfigError(
                f"port {board.port!r} is a URL: export the board from the host it is attached to",
                where=board.id,
            )
        else:
            resource, args = port_driver(spec).labgrid_resource(
                speed=board.baudrate, where=board.id
            )
            group[resource] = args
        if power_url is not None and board.id in powered:
            group["NetworkPowerPort"] = {
                "model": "rest",
                "host": power_url,
                "index": powered.index(board.id),
            }
        config[board.id] = group
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    import yaml  # a dependency of labgrid

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    return path


SHIM = """#!{python}
# Written by `hil lab exporter`: runs ser2net with chardelay off (see hil/labgrid/exporter.py).
import os
import sys

real = {real!r}
args = sys.argv[1:]
out = []
for index, arg in enumerate(args):
    out.append(arg)
    if arg == "  options:" and index > 0 and args[index - 1] == "-Y":
        out += ["-Y", "    chardelay: false"]
os.execv(real, [real, *out])
"""


def ser2net_shim(directory: Path) -> Path:
    """A directory holding the ``ser2net`` shim (put it first on the exporter's PATH)."""
    real = shutil.which("ser2net") or "/usr/sbin/ser2net"
    if not os.path.exists(real):
        raise ConfigError("ser2net is not installed (Debian: apt-get install ser2net)")
    shim_dir = directory / "shim"
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "ser2net"
    shim.write_text(SHIM.format(python=sys.executable, real=os.path.realpath(real)))
    shim.chmod(0o755)
    return shim_dir


def exporter_command(config: Path, coordinator: str, name: str, hostname: str) -> list[str]:
    """The labgrid-exporter command line (the one next to our Python, else on PATH)."""
    local = Path(sys.executable).with_name("labgrid-exporter")
    program = str(local) if local.exists() else shutil.which("labgrid-exporter")
    if program is None:
        raise ConfigError("labgrid-exporter not found: pip install 'mpy-hil[labgrid]'")
    return [program, "-c", coordinator, "--hostname", hostname, "-n", name, str(config)]


def serve(
    rack: Rack,
    *,
    coordinator: str,
    name: str,
    hostname: str,
    boards: list[str] | None,
    state_dir: Path,
    reclaim: bool = True,
) -> int:
    """Run the exporter for this host's boards until it ends or we are told to stop."""
    from hil.labgrid import require
    from hil.labgrid.power_server import PowerServer

    require()
    chosen = select_boards(rack, boards)
    switches = power_switches(chosen)
    power = PowerServer(list(switches.values()), host=hostname).start() if switches else None
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ser2net_shim(state_dir)), env.get("PATH", "")])
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watcher = _Watcher(coordinator, name, reclaim)
    child: subprocess.Popen | None = None
    try:
        while not stopping:
            # written anew at each start: a virtual board's pty may have changed meanwhile
            config = write_config(
                exporter_config(chosen, power.url if power else None, tuple(switches)),
                state_dir / f"{name}.yaml",
            )
            # the same process group as ours: killing the host kills its ser2net too
            child = subprocess.Popen(exporter_command(config, coordinator, name, hostname), env=env)
            print(f"hil lab exporter {name}: {len(chosen)} boards, pid {child.pid}", flush=True)
            watcher.watch(child, lambda: stopping)
            if stopping:
                break
            # labgrid's exporter ends when it loses the coordinator: come back when it does
            print(
                f"hil lab exporter {name}: labgrid-exporter ended ({child.returncode}); "
                f"starting it again in {RESTART_DELAY:g} s",
                flush=True,
            )
            deadline = time.monotonic() + RESTART_DELAY
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        watcher.close()
        if power is not None:
            power.stop()
    return 0


#: Seconds before labgrid's exporter is started again after it ended.
RESTART_DELAY = 2.0


class _Watcher:
    """While the exporter runs: reclaim dead holders' places every few seconds."""

    def __init__(self, coordinator: str, name: str, reclaim: bool) -> None:
        self.coordinator = coordinator
        self.name = name
        self.reclaim = reclaim
        self.session: Any = None
        self.reclaimer: Any = None

    def watch(self, child: subprocess.Popen, stopping: Callable[[], bool]) -> None:
        from hil.labgrid.reclaim import SCAN_INTERVAL

        next_scan = 0.0
        while child.poll() is None and not stopping():
            if self.reclaim and time.monotonic() >= next_scan:
                next_scan = time.monotonic() + SCAN_INTERVAL
                self._scan()
            time.sleep(0.2)

    def _scan(self) -> None:
        from hil.labgrid.client import Coordinator
        from hil.labgrid.holder import holder_name
        from hil.labgrid.reclaim import Reclaimer

        try:
            if self.session is None or not self.session.alive:
                self.close()
                name = str(holder_name(run="exporter", worker=self.name))
                self.session = Coordinator(self.coordinator, name=name).connect()
                self.reclaimer = Reclaimer(self.session)
            self.reclaimer.scan()
        except HilError as error:
            log.warning("reclaim scan failed: %s", error)

    def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
