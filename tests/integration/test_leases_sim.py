"""A rack of running virtual boards: leased ``sim:`` boards resolve to their own live ports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from hil.rack import LeaseManager, load_rack, resolve_port
from hil.sim import SimBoard

DEADLINE = 30.0


def prompt(port: str) -> bytes:
    """Interrupt whatever runs and return what the board said, up to its friendly prompt."""
    with serial.Serial(port, 115200, timeout=0.1, exclusive=True) as link:
        link.write(b"\r\x03\x02")  # Ctrl-C, then Ctrl-B: the friendly REPL
        received = b""
        deadline = time.monotonic() + DEADLINE
        while not received.endswith(b">>> "):
            if time.monotonic() > deadline:
                pytest.fail(f"{port}: no prompt within {DEADLINE} s; got {received[-200:]!r}")
            received += link.read(256)
        return received


def test_leased_sim_boards_resolve_to_their_own_live_ports(
    tmp_path: Path, start_virtual_boards: Callable[..., list[SimBoard]]
) -> None:
    boards = start_virtual_boards(2)
    state = boards[0].directory.parent
    rack_file = state / "rack.toml"
    rack_file.write_text(
        "".join(
            f'[[boards]]\nid = "{b.name}"\nport = "sim:{b.name}"\nplatform = "unix"\n'
            for b in boards
        )
    )
    rack = load_rack(rack_file)  # sim: paths are relative to the rack file
    manager = LeaseManager(rack.boards, tmp_path / "locks")

    leases = [manager.acquire(timeout=0) for _ in boards]
    ports = {lease.board.id: resolve_port(lease.board.port_spec) for lease in leases}

    assert ports == {b.name: b.port for b in boards}
    for port in ports.values():
        assert prompt(port).endswith(b">>> ")
