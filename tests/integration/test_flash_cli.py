"""``hil flash`` on a rack of four virtual boards, run the way a person runs it: as a command.

One board pins an image that fails its sha256 check. The other three must be flashed anyway,
each with its own progress bar, the summary must name the failure, and the exit status must say
that something failed. A second run must leave the three flashed boards alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hil.rack import LeaseManager, Selector, load_rack
from hil.sim import SimBoard

REPO = Path(__file__).resolve().parents[2]
PIN_IMAGE = REPO / "firmware" / "virtual" / "virtual-v1.29.0-hil.2.img"
PIN_VERSION = "v1.29.0-hil.2 on 2026-12-01"
BAR = "━"


def write_rack(tmp_path: Path, boards: list[SimBoard], broken: str) -> Path:
    """A rack file of the running boards; ``broken`` pins the corrupt image."""
    lines = ['lock_dir = "locks"']
    for board in boards:
        firmware = "corrupt" if board.name == broken else "good"
        lines += [
            "[[boards]]",
            f'id = "{board.name}"',
            f'port = "sim:{board.directory}"',
            'platform = "unix"',
            f'firmware = "{firmware}"',
            'flasher = { name = "sim" }',
        ]
    rack = tmp_path / "rack.toml"
    rack.write_text("\n".join(lines) + "\n")
    return rack


def write_manifest(tmp_path: Path) -> Path:
    """``good`` is the committed pin; ``corrupt`` is a damaged copy under the pin's sha256."""
    data = PIN_IMAGE.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    (tmp_path / "good.img").write_bytes(data)
    (tmp_path / "corrupt.img").write_bytes(data[:-16])  # truncated in transit, say
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        "".join(
            f'[firmware.{name}]\nplatform = "unix"\nimage = "{name}.img"\n'
            f'sha256 = "{sha256}"\nversion = "{PIN_VERSION}"\n'
            for name in ("good", "corrupt")
        )
    )
    return manifest


def hil_flash(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the ``hil`` command in a child process, its output as a 160-column non-terminal."""
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", "flash", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def progress_lines(output: str) -> dict[str, str]:
    """The progress bar line of each board (a line starting with its id and holding a bar)."""
    bars = {}
    for line in output.splitlines():
        words = line.split()
        if words and BAR in line and not line.startswith(("┏", "┡", "└", "┃", "│")):
            assert words[0] not in bars, f"two bars for {words[0]}:\n{output}"
            bars[words[0]] = line
    return bars


def summary_rows(output: str) -> dict[str, str]:
    """Rows of the 'Flash summary' table by board id."""
    assert "Flash summary" in output, output
    table = output.split("Flash summary", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1]:
            rows[cells[1]] = line
    return rows


def test_hil_flash_flashes_three_boards_when_the_fourth_fails(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(4)
    broken = boards[2].name
    rack = write_rack(tmp_path, boards, broken)
    manifest = write_manifest(tmp_path)
    before = {board.name: board.control.status()["flashes"] for board in boards}

    done = hil_flash("--rack", rack, "--firmware-manifest", manifest)

    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    bars = progress_lines(out)
    assert sorted(bars) == sorted(board.name for board in boards), out
    rows = summary_rows(out)
    assert sorted(rows) == sorted(board.name for board in boards), out
    assert "FAILED" in rows[broken] and "FAILED" in bars[broken]
    words = " ".join(out.replace("│", " ").split())  # table cells wrap long errors over lines
    assert "firmware.corrupt: refusing to flash" in words, out
    for board in boards:
        status = board.control.status()
        if board.name == broken:
            assert status["flashes"] == before[board.name], "the corrupt image reached the board"
            assert status["firmware"]["version"] != "v1.29.0-hil.2"
        else:
            assert "ok" in rows[board.name].split(), rows[board.name]
            assert status["flashes"] == before[board.name] + 1
            assert status["firmware"]["version"] == "v1.29.0-hil.2"
    assert out.rstrip().endswith("3 flashed, 0 left alone (on the pin), 1 failed"), out

    again = hil_flash("--rack", rack, "--firmware-manifest", manifest)

    assert again.returncode == 1, again.stdout + again.stderr
    assert sorted(progress_lines(again.stdout)) == [broken]  # only the broken one is retried
    assert again.stdout.rstrip().endswith("0 flashed, 3 left alone (on the pin), 1 failed")
    for board in boards:
        expected = before[board.name] + (0 if board.name == broken else 1)
        assert board.control.status()["flashes"] == expected


def test_hil_flash_exits_zero_when_the_chosen_boards_are_on_their_pin(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(2)
    for board in boards:
        board.control.flash(PIN_IMAGE)
    rack = write_rack(tmp_path, boards, broken="none")
    manifest = write_manifest(tmp_path)

    done = hil_flash("--rack", rack, "--firmware-manifest", manifest, "--board", boards[0].name)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Flash summary" not in done.stdout  # nothing to flash, no bars
    assert done.stdout.rstrip().endswith("0 flashed, 1 left alone (on the pin), 0 failed")
    assert [board.control.status()["flashes"] for board in boards] == [1, 1]


def test_hil_flash_names_an_unknown_board_in_one_line(tmp_path: Path) -> None:
    rack = tmp_path / "rack.toml"
    rack.write_text('[[boards]]\nid = "b0"\nport = "/dev/ttyACM0"\nplatform = "rp2"\n')
    manifest = write_manifest(tmp_path)

    done = hil_flash("--rack", rack, "--firmware-manifest", manifest, "--board", "b9")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hil: --board: no board 'b9' in the rack (boards: b0) [usage fault]"
    ]


def test_hil_flash_does_not_touch_a_board_that_another_run_holds(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    boards = start_virtual_boards(2)
    rack_file = write_rack(tmp_path, boards, broken="none")
    manifest = write_manifest(tmp_path)
    rack = load_rack(rack_file)
    held = LeaseManager(rack.boards, rack.lock_dir, label="a test run").acquire(
        Selector(id=boards[0].name), timeout=5
    )
    try:
        done = hil_flash("--rack", rack_file, "--firmware-manifest", manifest)
    finally:
        held.release()

    assert done.returncode == 1, done.stdout + done.stderr
    words = " ".join(done.stdout.replace("│", " ").split())
    assert f"{boards[0].name} good ? FAILED:" in words, done.stdout
    assert "in use, not flashed:" in words and "(a test run)" in words, done.stdout
    assert sorted(progress_lines(done.stdout)) == [boards[1].name]
    assert [board.control.status()["flashes"] for board in boards] == [0, 1]
