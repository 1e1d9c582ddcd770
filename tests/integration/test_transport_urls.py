"""The same board over a network URL: ``socket://`` through a TCP bridge, as ser2net serves a
board of a remote rack, and ``rfc2217://`` through pyserial's own RFC 2217 port manager."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import serial
import serial.rfc2217

from hil.board import Board
from hil.sim import SimBoard


class _PtySerial(serial.Serial):
    """The virtual board's pty has no modem lines (no TIOCMGET): report them idle, as a
    ser2net-style server does for a three-wire UART."""

    cts = dsr = ri = cd = property(lambda self: False)

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass


class _Writer:
    """What pyserial's RFC 2217 port manager writes its telnet answers to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)


@contextlib.contextmanager
def tcp_bridge(port_path: str, rfc2217: bool = False) -> Iterator[int]:
    """Serve the board's serial port on a local TCP port (one client); yields the TCP port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    link = _PtySerial(port_path, timeout=0.05)
    stop = threading.Event()

    def serve() -> None:
        try:
            client, _ = server.accept()
        except OSError:
            return
        client.settimeout(0.05)
        manager = serial.rfc2217.PortManager(link, _Writer(client)) if rfc2217 else None
        with client:
            while not stop.is_set():
                data = link.read(4096)
                if data:
                    client.sendall(b"".join(manager.escape(data)) if manager else data)
                try:
                    got = client.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not got:
                    return
                link.write(b"".join(manager.filter(got)) if manager else got)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)
        link.close()


@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_board_over_a_network_url(virtual_board: SimBoard, scheme: str) -> None:
    with (
        tcp_bridge(virtual_board.port, rfc2217=scheme == "rfc2217") as tcp_port,
        Board.open(f"{scheme}://127.0.0.1:{tcp_port}", name="remote") as board,
    ):
        assert board.eval("6 * 7") == 42
        assert board.exec("print('over', 'the', 'network')") == "over the network\n"
        board.put(bytes(range(256)) * 8, "net.bin")
        assert board.get("net.bin") == bytes(range(256)) * 8
