"""The ``hil`` tables at 80 columns (and piped, with no ``$COLUMNS``): nothing a person copies is
cut or broken over lines, headers stay whole words, rows stay short.

Run as a person runs them: the real ``hil`` command in a child process, on real virtual boards.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.rack import LeaseManager, Selector, load_rack
from hil.sim import SimBoard

REPO = Path(__file__).resolve().parents[2]
LONG_ID = "sim-b-with-a-rather-long-board-id-0123456"  # 41 characters
PIN_IMAGE = REPO / "firmware" / "virtual" / "virtual-v1.29.0-hil.2.img"


def hil(*args: str | Path, columns: int | None = 80, timeout: float = 120) -> str:
    """The command's output, piped (never a terminal), at ``columns`` (None: no $COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.stdout


def assert_fits(out: str, width: int = 80) -> None:
    """Every line within ``width``, and nothing cut with an ellipsis."""
    assert all(len(line.rstrip()) <= width for line in out.splitlines()), out
    assert "…" not in out and "..." not in out, out


def cells(line: str) -> list[str]:
    """The cells of a table row (``│ a │ b │`` -> ``["a", "b"]``)."""
    return [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]


def rack_file(tmp_path: Path, boards: list[SimBoard], ids: list[str], extra: str = "") -> Path:
    text = f'lock_dir = "{tmp_path / "locks"}"\n'
    for board, board_id in zip(boards, ids, strict=True):
        text += (
            f'[[boards]]\nid = "{board_id}"\nport = "sim:{board.directory}"\nplatform = "unix"\n'
            'firmware = "good"\nflasher = { name = "sim" }\n'
        )
    path = tmp_path / "rack.toml"
    path.write_text(text + extra)
    return path


@pytest.mark.parametrize("columns", [80, None])
def test_sim_status_never_cuts_the_port(
    start_virtual_boards: Callable[..., list[SimBoard]], columns: int | None
) -> None:
    boards = start_virtual_boards(2, sd="1M")
    state = boards[0].directory.parent
    out = hil("sim", "status", "--state-dir", state, columns=columns)
    assert_fits(out)
    for board in boards:
        port = str(board.directory / "port")
        assert any(port in line for line in out.splitlines()), out  # whole, on one line
    firmware = boards[0].control.status()["firmware"]["version"]
    assert firmware in out, out  # the firmware too


def test_sim_status_shows_the_port_as_a_column_when_it_fits(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (board,) = start_virtual_boards(1)
    out = hil("sim", "status", "--state-dir", board.directory.parent, columns=200)
    (row,) = [line for line in out.splitlines() if line.startswith("│ vb0")]
    assert cells(row)[-1] == str(board.directory / "port"), out


def test_rack_status_of_the_example_rack_is_a_table_at_80_columns() -> None:
    out = hil("rack", "status", REPO / "ci" / "rack.example.toml", "--lock-dir", "/nonexistent/x")
    assert_fits(out)
    (header,) = [line for line in out.splitlines() if line.startswith("┃")]
    assert cells(header) == ["board", "platform", "port", "present", "lease", "firmware"], out
    widths = [len(cell) - 2 for cell in header.split("┃")[1:-1]]
    assert widths[1:] >= [len(name) for name in cells(header)[1:]], out  # headers whole
    assert widths[2] >= 14, out  # a port is not folded letter by letter
    port_cells = [cells(line)[2] for line in out.splitlines() if line.startswith("│")]
    assert "rfc2217://bench-pi.lan:4000" in "".join(port_cells)  # all there, wrapped
    assert "rack (5 boards," in out


def test_rack_status_with_a_long_id_and_a_held_board_cuts_nothing(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path, boards, ["vb0", LONG_ID])
    held = LeaseManager(load_rack(rack).boards, tmp_path / "locks", label="a test run")
    lease = held.acquire(Selector(id="vb0"), timeout=5)
    try:
        out = hil("rack", "status", rack)
    finally:
        lease.release()
    assert_fits(out)
    lines = out.splitlines()
    assert any(LONG_ID in line for line in lines), out  # the id whole, on one line
    for board in boards:
        assert any(f"sim:{board.directory}" in line for line in lines), out
    words = " ".join(out.replace("│", " ").split())
    assert f"held by pid {os.getpid()}" in words and "(a test run)" in words, out
    assert re.search(r"\bplatform\b", out) and re.search(r"\bfirmware\b", out), out


def test_rack_status_of_one_board_says_board(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(1)
    out = hil("rack", "status", rack_file(tmp_path, boards, ["vb0"]))
    assert "rack (1 board," in out, out


def test_rack_check_rows_stay_short_and_capabilities_whole(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(1)
    missing = (
        '[[boards]]\nid = "gone"\nport = "/dev/serial/by-id/usb-none-if00"\nplatform = "esp32"\n'
    )
    out = hil("rack", "check", rack_file(tmp_path, boards, ["vb0"], extra=missing))
    assert_fits(out)
    rows: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("│"):
            current = cells(line)[0] or current
            rows.setdefault(current, []).append(line)
    assert sorted(rows) == ["gone", "vb0"], out
    assert len(rows["gone"]) <= 6, out  # the reason wraps at a readable width
    capabilities = " ".join(cells(line)[4] for line in rows["vb0"]).split()
    assert "machine.unique_id," in capabilities and "sys.modules," in capabilities, out
    detail = "".join(cells(line)[3] for line in rows["gone"])
    assert "cannotopenport/dev/serial/by-id/usb-none-if00" in detail.replace(" ", ""), out
    assert not detail.startswith("gone:"), out  # the row names the board already


def test_flash_with_a_long_board_id_at_80_columns(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path, boards, ["vb0", LONG_ID])
    data = PIN_IMAGE.read_bytes()
    (tmp_path / "good.img").write_bytes(data)
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        f'[firmware.good]\nplatform = "unix"\nimage = "good.img"\n'
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"\nversion = "v1.29.0-hil.2 on 2026-12-01"\n'
    )
    out = hil("flash", "--rack", rack, "--firmware-manifest", manifest, timeout=300)
    assert_fits(out)
    bars = [line for line in out.splitlines() if "━" in line and not line.startswith(("┏", "┡"))]
    assert len(bars) == 2, out
    for bar in bars:  # nothing of a progress line cut: bytes, status, elapsed time
        assert re.search(r"━ +\d+(\.\d+)?/\d+(\.\d+)? kB ok \d:\d\d:\d\d$", bar), bar
    assert any(line.startswith(LONG_ID) for line in bars), out
    summary = out.split("Flash summary", 1)[1]
    rows = [cells(line) for line in summary.splitlines() if line.startswith("│")]
    assert sorted(row[0] for row in rows) == sorted(["vb0", LONG_ID]), out
    assert all(row[2] == "ok" for row in rows), out
    assert out.rstrip().endswith("2 flashed, 0 left alone (on the pin), 0 failed"), out


def test_rack_check_of_a_held_board_names_its_holder_once(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(1)
    rack = rack_file(tmp_path, boards, ["vb0"])
    manager = LeaseManager(load_rack(rack).boards, tmp_path / "locks", label="a test run")
    lease = manager.acquire(Selector(id="vb0"), timeout=5)
    try:
        out = hil("rack", "check", rack)
    finally:
        lease.release()
    assert_fits(out)
    words = " ".join(" ".join(cells(line)) for line in out.splitlines() if line.startswith("│"))
    assert f"vb0 ? ? held by pid {os.getpid()}" in words, out  # not "vb0 ... vb0 held by"
