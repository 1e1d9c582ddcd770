"""``hil rack status`` and ``hil rack check`` against running virtual boards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def hil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def rack_file(tmp_path: Path, boards, extra: str = "") -> Path:
    text = f'lock_dir = "{tmp_path / "locks"}"\n'
    for board in boards:
        text += (
            f'[[boards]]\nid = "{board.name}"\nport = "sim:{board.directory}"\nplatform = "unix"\n'
        )
    path = tmp_path / "rack.toml"
    path.write_text(text + extra)
    return path


def test_status_shows_presence_and_leases(tmp_path: Path, start_virtual_boards) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path, boards)
    boards[1].control.unplug()
    done = hil("rack", "status", str(rack))
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "yes" in rows["vb0"] and "free" in rows["vb0"]
    assert "NO" in rows["vb1"]


def test_check_reports_firmware_and_failures(tmp_path: Path, start_virtual_boards) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path, boards)
    ok = hil("rack", "check", str(rack))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("v1.29") == 2
    assert ok.stdout.count("sys.modules") == 2  # what each board's probe found
    boards[0].control.unplug()
    bad = hil("rack", "check", str(rack))
    assert bad.returncode == 1
    assert "NO" in bad.stdout


def test_malformed_rack_is_one_line(tmp_path: Path) -> None:
    rack = tmp_path / "rack.toml"
    rack.write_text('[[boards]]\nid = "x"\nport = "/dev/null"\nplatfrom = "esp32"\n')
    done = hil("rack", "status", str(rack))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "platfrom" in done.stderr


def test_status_in_80_columns_wraps_and_never_cuts(tmp_path: Path, start_virtual_boards) -> None:
    boards = start_virtual_boards(1)
    rack = rack_file(
        tmp_path,
        boards,
        extra=(
            '[[boards]]\nid = "esp32-with-a-rather-long-board-id"\n'
            'port = "usb-serial:0001A2B3C4D5E6F7A8B9"\nplatform = "esp32"\n'
            'firmware = "esp32-generic-v1.24.1"\n'
        ),
    )
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", "rack", "status", str(rack)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert all(len(line) <= 80 for line in done.stdout.splitlines())
    assert "…" not in done.stdout and "..." not in done.stdout  # nothing cut
    assert "esp32-with-a-rather-long-board-id" in done.stdout  # ids whole, on one line
    # A table (the port wrapped in its column) or, too narrow for one, a block per board.
    rows = [line.split("│") for line in done.stdout.splitlines() if line.count("│") == 7]
    port_column = "".join(cells[3].strip() for cells in rows) if rows else done.stdout
    assert "usb-serial:0001A2B3C4D5E6F7A8B9" in port_column  # wrapped, but all there


def test_check_asks_every_board_and_releases_every_lease(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path, boards)
    for board in boards:
        board.control.unplug()
    done = hil("rack", "check", str(rack))
    assert done.returncode == 1
    rows = [line for line in done.stdout.splitlines() if "│ NO" in line]
    assert len(rows) == 2  # both asked (at once), both failed
    left = sorted(path.name for path in (tmp_path / "locks").iterdir())
    assert left == []  # every lease released, no lock or holder file left behind
