"""A user's mistake at the ``hil`` command is a usage fault, not an infrastructure one.

A virtual board's server refuses a request that cannot be done (no SD slot, a bad value): the
request was wrong, so the client says ``[usage fault]``. A board or server that fails stays an
infrastructure fault. Run as a person runs it: the real command, on real virtual boards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.errors import ConfigError, SimError
from hil.sim import SimBoard
from hil.sim.control import SimControl, refusal


def hil(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )


def usage_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2 and one line ending "[usage fault]" that names ``words``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith("[usage fault]"), lines[0]
    assert "infrastructure" not in lines[0] and "ValueError" not in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_card_eject_without_a_card_slot_is_usage(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (board,) = start_virtual_boards(1)  # no --sd: no slot
    state = board.directory.parent
    usage_line(hil("sim", "card", "vb0", "eject", "--state-dir", state), "vb0", "no SD slot")
    with pytest.raises(ConfigError, match="no SD slot") as caught:
        board.control.card_eject()
    assert isinstance(caught.value, SimError)  # still a refusal of the virtual board
    assert board.control.status()["state"] == "ready"


def test_a_value_the_board_server_refuses_is_usage(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (board,) = start_virtual_boards(1)
    state = board.directory.parent
    done = hil("sim", "fault", "vb0", "drop", "--rate", "5", "--state-dir", state)
    usage_line(done, "rate must be a probability")
    assert board.control.status()["faults"]["drop"] == 0


def test_flashing_a_file_that_is_no_firmware_is_usage(
    start_virtual_boards: Callable[..., list[SimBoard]], tmp_path: Path
) -> None:
    (board,) = start_virtual_boards(1)
    image = tmp_path / "notes.txt"
    image.write_text("not firmware\n")
    done = hil("sim", "flash", "vb0", image, "--state-dir", board.directory.parent)
    usage_line(done, str(image), "not a virtual-board firmware image")
    assert done.stderr.count("fault]") == 1  # said once
    assert board.control.status()["flashes"] == 0


def test_starting_boards_twice_in_one_dir_is_usage(
    start_virtual_boards: Callable[..., list[SimBoard]],
) -> None:
    (board,) = start_virtual_boards(1)
    done = hil("sim", "start", "--state-dir", board.directory.parent)
    usage_line(done, "already running", "hil sim stop")
    assert board.control.status()["state"] == "ready"


def test_a_failing_board_server_stays_infrastructure(tmp_path: Path) -> None:
    with pytest.raises(SimError) as caught:
        SimControl(tmp_path / "vb0", timeout=1).status()  # no server there
    assert not isinstance(caught.value, ConfigError)
    assert str(caught.value).endswith("[infrastructure fault]")
    error = refusal("flash", "SimError: image write failed [infrastructure fault]", "vb0")
    assert not isinstance(error, ConfigError)
    assert str(error) == "vb0: flash refused: SimError: image write failed [infrastructure fault]"


def test_report_without_results_is_usage(tmp_path: Path) -> None:
    usage_line(hil("report", cwd=tmp_path), "allure-results", "--alluredir")
    (tmp_path / "empty").mkdir()
    usage_line(hil("report", "--results", "empty", cwd=tmp_path), "no Allure results")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x-result.json").write_text("{}")
    done = hil("report", "--results", "r", "--tooling", tmp_path / "empty", cwd=tmp_path)
    usage_line(done, "--tooling", "package.json")
    assert not (tmp_path / "allure-report").exists()
