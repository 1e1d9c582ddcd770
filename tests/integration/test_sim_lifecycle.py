"""Starting and stopping virtual boards leaves nothing behind: no process, socket or symlink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import hil.sim
from hil.errors import ConfigError


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def leftovers(state: Path) -> list[str]:
    return sorted(
        str(p.relative_to(state))
        for p in state.rglob("*")
        if p.name in ("control.sock", "server.pid") or p.name.startswith("port")
    )


def test_start_eight_and_stop_leaves_nothing(tmp_path: Path) -> None:
    run = hil.sim.start(tmp_path, 8)
    try:
        pids = [board.control.status()["pid"] for board in run.boards]
        ports = {board.port for board in run.boards}
        assert len(ports) == 8
        assert all(alive(pid) for pid in pids)
    finally:
        run.stop()
    assert not alive(run.pid)
    assert [pid for pid in pids if alive(pid)] == []
    assert leftovers(tmp_path) == []


def test_killed_server_takes_its_interpreters_along(tmp_path: Path, wait_until) -> None:
    run = hil.sim.start(tmp_path, 2)
    try:
        pids = [board.control.status()["pid"] for board in run.boards]
        os.kill(run.pid, signal.SIGKILL)
        wait_until(lambda: not any(alive(pid) for pid in pids), 10, "orphaned interpreters to die")
    finally:
        run.stop()


def test_cli_start_status_stop(tmp_path: Path) -> None:
    hil_cmd = [sys.executable, "-m", "hil.cli", "sim"]
    try:
        started = subprocess.run(
            [
                *hil_cmd,
                "start",
                "-n",
                "2",
                "--kind",
                "unix",
                "--sd",
                "1M",
                "--state-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 0, started.stderr
        ports = started.stdout.split()
        assert len(ports) == 2 and all(Path(p).exists() for p in ports)
        status = subprocess.run(
            [*hil_cmd, "status", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "vb0" in status.stdout and "vb1" in status.stdout and "ready" in status.stdout
        assert json.loads((tmp_path / "vb1" / "board.json").read_text())["kind"] == "unix"
        again = subprocess.run(
            [*hil_cmd, "start", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert again.returncode == 2
        assert again.stderr.startswith("hil: ") and "already running" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
        stopped = subprocess.run(
            [*hil_cmd, "stop", "--state-dir", str(tmp_path)], capture_output=True, timeout=30
        )
        assert stopped.returncode == 0
        assert leftovers(tmp_path) == []
    finally:
        hil.sim.stop(tmp_path)


def test_an_unknown_board_kind_is_refused_before_anything_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(ConfigError, match=r"unknown board kind 'abacus' \(known: .*unix"):
        hil.sim.start(state, 1, kind="abacus")
    assert not state.exists()


def test_boards_report_their_kind(tmp_path: Path) -> None:
    run = hil.sim.start(tmp_path, 1, kind="unix")
    try:
        assert run.boards[0].control.status()["kind"] == "unix"
    finally:
        run.stop()
