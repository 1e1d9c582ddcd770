"""A whole lab on one machine, for tests and benchmarks: a coordinator, exporters ("hosts"),
virtual boards behind each, their places. Every process is started here and stopped by pid (an
exporter host by its process group, ser2net included).

Where the machine allows it (root, ``ip netns``), each exporter host runs in a network namespace
of its own, linked to this one by a veth pair the lab creates (10.N.i.0/30), and the coordinator
listens on a dummy interface the lab creates: traffic stays inside what the lab made, and a host
really is reached by its own address. Elsewhere everything listens on loopback.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import hil.sim
from hil.deadline import Deadline
from hil.errors import HilError, InfrastructureError
from hil.labgrid.client import Coordinator


def missing() -> str | None:
    """Why a lab cannot run here (labgrid or ser2net absent), or None."""
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return "labgrid is not installed (pip install 'mpy-hil[labgrid]')"
    if not (shutil.which("ser2net") or os.path.exists("/usr/sbin/ser2net")):
        return "ser2net is not installed (Debian: apt-get install ser2net)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _program(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def _stop(proc: subprocess.Popen, *, group: bool, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(5)


def rack_toml(boards: list[tuple[str, Path]]) -> str:
    """A rack file of virtual boards (id, state directory) as a lab host has it."""
    parts = []
    for board_id, directory in boards:
        parts.append(
            "[[boards]]\n"
            f'id = "{board_id}"\nport = "sim:{directory}"\nplatform = "unix"\n'
            'tags = ["virtual", "unix"]\nreset = "sim"\npower = "sim"\n'
            '[boards.capabilities.sd]\ndriver = "machine.SDCard"\nslot = 2\n'
        )
    return "\n".join(parts)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise InfrastructureError(f"ip {' '.join(args)}: {done.stderr.strip()}", where="test lab")


def namespaces_possible() -> bool:
    """Whether this machine lets us make network namespaces (root and a working ``ip netns``)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"hil-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (InfrastructureError, OSError):
        return False
    with contextlib.suppress(InfrastructureError):
        _ip("netns", "del", probe)
    return True


def _free_net() -> int:
    """A second octet N such that no interface here has an address in 10.N.0.0/16."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, timeout=30).stdout
    for net in random.sample(range(100, 200), 100):
        if f" 10.{net}." not in used:
            return net
    raise InfrastructureError("no free 10.N.0.0/16 network for the lab", where="test lab")


class Network:
    """The lab's links: one namespace per host, joined to this one by a veth pair; the
    coordinator listens on this side of host 0's pair, which every host reaches by its route."""

    def __init__(self, hosts: int) -> None:
        self.tag = secrets.token_hex(3)
        self.net = _free_net()
        self.coordinator_ip = f"10.{self.net}.0.1"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.hosts: list[tuple[str, str]] = []
        try:
            for index in range(hosts):
                self.hosts.append(self._add_host(index))
        except BaseException:
            self.remove()
            raise

    def _add_host(self, index: int) -> tuple[str, str]:
        """A namespace for host ``index`` and its address, reachable from here."""
        namespace = f"hil-{self.tag}-h{index}"
        outside, inside = f"hv{self.tag}{index}a", f"hv{self.tag}{index}b"
        _ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        self.links.append(outside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"10.{self.net}.{index}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        address = f"10.{self.net}.{index}.2"
        inns = ("netns", "exec", namespace, "ip")
        _ip(*inns, "addr", "add", f"{address}/30", "dev", inside)
        _ip(*inns, "link", "set", inside, "up")
        _ip(*inns, "link", "set", "lo", "up")
        _ip(*inns, "route", "add", "default", "via", f"10.{self.net}.{index}.1")
        return namespace, address

    def remove(self) -> None:
        for namespace in self.namespaces:  # takes the veth pair with it
            with contextlib.suppress(InfrastructureError):
                _ip("netns", "del", namespace)
        for link in self.links:
            with contextlib.suppress(InfrastructureError):
                _ip("link", "del", link)


@dataclass
class Host:
    """One exporter host: its virtual boards and its ``hil lab exporter`` process group."""

    name: str
    rack: Path
    sims: hil.sim.SimRun
    boards: list[str]
    exporter: subprocess.Popen | None = None
    namespace: str | None = None
    address: str = "127.0.0.1"

    def kill(self) -> None:
        """The host dies: its exporter, ser2net and power server go at once (kill -9)."""
        if self.exporter is not None and self.exporter.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.exporter.pid, signal.SIGKILL)
            self.exporter.wait(10)


@dataclass
class Lab:
    directory: Path
    address: str = ""
    coordinator: subprocess.Popen | None = None
    hosts: list[Host] = field(default_factory=list)
    network: Network | None = None

    @property
    def boards(self) -> list[str]:
        return [b for host in self.hosts for b in host.boards]

    def board_dir(self, board_id: str) -> Path:
        for host in self.hosts:
            for board in host.sims.boards:
                if f"{host.name}-{board.name}" == board_id:
                    return board.directory
        raise KeyError(board_id)

    def session(self, name: str = "test/hil-0-lab-check") -> Coordinator:
        return Coordinator(self.address, name=name, timeout=5.0).connect()

    def hil(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "hil.cli", "lab", *args, "--coordinator", self.address],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start_coordinator(self) -> None:
        """Start the coordinator (again, on the same address, after it was killed)."""
        if not self.address:
            ip = self.network.coordinator_ip if self.network else "127.0.0.1"
            self.address = f"{ip}:{free_port()}"
        log = open(self.directory / "coordinator.log", "ab")  # noqa: SIM115 - the child's
        self.coordinator = subprocess.Popen(
            [_program("labgrid-coordinator"), "--listen", self.address],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = Deadline(30)
        while True:
            try:
                self.session().close()
                return
            except HilError as error:
                if deadline.expired or self.coordinator.poll() is not None:
                    raise InfrastructureError(
                        "the coordinator did not come up", where=self.address
                    ) from error
                time.sleep(0.2)

    def add_host(self, name: str, count: int) -> Host:
        state = self.directory / name
        # a board behind a USB-UART bridge keeps its port across resets and power cycles, as an
        # exported RawSerialPort must (a native-USB board re-enumerates: export it as usb-serial:)
        sims = hil.sim.start(
            state / "sim", count, sd="4M", sd_slot=2, usb="uart", owner_pid=os.getpid()
        )
        boards = [(f"{name}-{b.name}", b.directory) for b in sims.boards]
        rack = state / "rack.toml"
        rack.write_text(rack_toml(boards))
        host = Host(name, rack, sims, [b for b, _ in boards])
        if self.network is not None:
            host.namespace, host.address = self.network.hosts[len(self.hosts)]
        self.hosts.append(host)
        return host

    def start_exporter(self, host: Host) -> None:
        log = open(self.directory / f"{host.name}.log", "ab")  # noqa: SIM115 - the child's
        inside = ("ip", "netns", "exec", host.namespace) if host.namespace else ()
        host.exporter = subprocess.Popen(
            [
                *inside,
                *(sys.executable, "-m", "hil.cli", "lab", "exporter", str(host.rack)),
                *("--coordinator", self.address, "--name", host.name, "--hostname", host.address),
                *("--state-dir", str(self.directory / host.name)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the "host" dies as one
        )
        log.close()

    def set_up_places(self, host: Host) -> None:
        done = self.hil("places", str(host.rack), "--exporter", host.name)
        if done.returncode != 0:
            raise InfrastructureError(f"hil lab places failed: {done.stderr.strip()}")

    def wait_for_resources(self, timeout: float = 60.0) -> None:
        """Until every board's serial port is published by its exporter."""
        deadline = Deadline(timeout)
        wanted = {(h.name, b) for h in self.hosts for b in h.boards}
        while True:
            with self.session() as session:
                seen = {
                    (r.exporter, r.group)
                    for r in session.resources()
                    if r.cls == "NetworkSerialPort" and r.avail
                }
            if wanted <= seen:
                return
            if deadline.expired:
                raise InfrastructureError(f"exporters published only {sorted(seen)}")
            time.sleep(0.3)

    def stop(self) -> None:
        for host in self.hosts:
            if host.exporter is not None:
                _stop(host.exporter, group=True)
            with contextlib.suppress(HilError):
                host.sims.stop()
        if self.coordinator is not None:
            _stop(self.coordinator, group=False)
        if self.network is not None:
            self.network.remove()


def start_lab(
    directory: Path,
    *,
    hosts: int = 3,
    boards_per_host: int = 2,
    namespaces: bool | None = None,
) -> Lab:
    """Start a lab; on any failure, what was started is stopped before the error propagates.

    ``namespaces``: each host in its own network namespace (None: where the machine allows).
    """
    lab = Lab(Path(directory))
    lab.directory.mkdir(parents=True, exist_ok=True)
    try:
        if namespaces or (namespaces is None and namespaces_possible()):
            lab.network = Network(hosts)
        lab.start_coordinator()
        for index in range(hosts):
            host = lab.add_host(f"host{index}", boards_per_host)
            lab.start_exporter(host)
            lab.set_up_places(host)
        lab.wait_for_resources()
    except BaseException:
        lab.stop()
        raise
    return lab
