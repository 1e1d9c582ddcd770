"""Spreading a suite over equivalent boards, and the reset scope: pytest as users run it.

What ran where is read from the boards' side: every test appends its name to a file on the
board's own flash, and the files are read back from each board after the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from hil.board import Board

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

#: 12 tests that each leave their name in /ran.txt on the board that ran them.
SUITE = """
import pytest

@pytest.mark.parametrize("n", range(12))
def test_claim(board, n):
    board.exec(f"with open('/ran.txt', 'a') as f:\\n    f.write('claim-{n}\\\\n')")
    assert board.eval("6 * 7") == 42
"""


def run_pytest(directory: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PYTEST, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def rack_file(path: Path, boards, **extra: dict[str, str]) -> Path:
    """A rack naming running virtual boards; ``extra[board name]`` adds keys to one entry."""
    lines = [f'lock_dir = "{path.parent / "locks"}"']
    for board in boards:
        lines += [
            "[[boards]]",
            f'id = "{board.name}"',
            f'port = "sim:{board.directory}"',
            'platform = "unix"',
            *(f"{k} = {v}" for k, v in extra.get(board.name, {"reset": '"sim"'}).items()),
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def ran_on(boards) -> dict[str, list[str]]:
    """What each board says it ran (its /ran.txt), by board name."""
    ran = {}
    for vb in boards:
        with Board.open(vb.port, name=vb.name) as link:
            text = link.eval(
                "open('/ran.txt').read() if 'ran.txt' in __import__('os').listdir('/') else ''"
            )
        ran[vb.name] = text.split()
    return ran


def properties(junit: Path) -> dict[str, dict[str, str]]:
    """Each test's user properties (the plugin's ``hil_*``), by test name, from JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        found[case.get("name")] = props
    return found


def test_a_group_of_four_runs_each_test_once_spread_over_its_boards(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(4)
    rack = rack_file(tmp_path / "rack.toml", boards)
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))

    done = run_pytest(tmp_path, f"--hil-rack={rack}", "-n", "4", "-rA")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_claim[unix-0]" in done.stdout  # the group, not a board, names the test
    ran = ran_on(boards)
    everything = Counter(name for names in ran.values() for name in names)
    assert everything == Counter(f"claim-{n}" for n in range(12))  # each claim exactly once
    assert all(ran[vb.name] for vb in boards), ran  # and every board did its share


def test_per_board_mode_still_runs_each_test_on_every_board(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(4)
    rack = rack_file(tmp_path / "rack.toml", boards)
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))

    done = run_pytest(tmp_path, f"--hil-rack={rack}", "-n", "4", "--hil-spread=board")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "48 passed" in done.stdout
    for names in ran_on(boards).values():
        assert sorted(names) == sorted(f"claim-{n}" for n in range(12))


def test_the_tests_of_a_quarantined_board_go_on_on_another_board_of_its_group(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(3)
    broken_hub = f'["{sys.executable}", "-c", "raise SystemExit(1)"]'
    # every board recovers by nothing but a soft reset and a hub that fails: a hang is fatal
    rack = rack_file(
        tmp_path / "rack.toml",
        boards,
        **{vb.name: {"reset": '"soft"', "power": broken_hub} for vb in boards},
    )
    (tmp_path / "test_suite.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from hil.sim.control import SimControl

            @pytest.mark.parametrize("n", range(6))
            def test_claim(board, hil_board_entry, n):
                board.exec(f"with open('/ran.txt', 'a') as f:\\n    f.write('claim-{n}\\\\n')")
                if n == 1:  # its board hangs for good after this test
                    SimControl(hil_board_entry.port_spec.value).fault("hang")
            """
        )
    )
    junit = tmp_path / "junit.xml"

    done = run_pytest(tmp_path, f"--hil-rack={rack}", f"--junitxml={junit}")

    out = done.stdout + done.stderr
    assert done.returncode == 0 and "6 passed" in out, out
    ran = ran_on([vb for vb in boards if not _hung(vb)])
    hung = [vb for vb in boards if _hung(vb)]
    assert len(hung) == 1
    everything = Counter(name for names in ran.values() for name in names)
    assert everything == Counter(f"claim-{n}" for n in range(2, 6))  # after the hang, elsewhere
    moved = {name: p for name, p in properties(junit).items() if "hil_moved_from" in p}
    assert moved, "the tests that moved say so"
    assert {p["hil_moved_from"] for p in moved.values()} == {hung[0].name}
    assert all(p["hil_board"] != hung[0].name for p in moved.values())
    assert "quarantined" in out and hung[0].name in out


def _hung(vb) -> bool:
    return vb.control.status()["state"] == "hung"


SCOPED = """
import pytest

def test_1_sets(board):
    board.exec("left_by_test_1 = 1")

def test_2_sees_it_only_within_the_file(board):
    assert board.eval("'left_by_test_1' in globals()") is {expected}
"""


def test_module_reset_scope_keeps_the_board_between_tests_of_a_file_only(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(1)
    rack = rack_file(tmp_path / "rack.toml", boards)
    (tmp_path / "test_a_scoped.py").write_text(textwrap.dedent(SCOPED.format(expected=True)))
    (tmp_path / "test_b_next_file.py").write_text(
        "def test_3_starts_clean(board):\n"
        "    assert board.eval(\"'left_by_test_1' in globals()\") is False\n"
    )

    done = run_pytest(tmp_path, f"--hil-rack={rack}", "--hil-reset-scope=module")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout

    (tmp_path / "test_a_scoped.py").write_text(textwrap.dedent(SCOPED.format(expected=False)))
    done = run_pytest(tmp_path, f"--hil-rack={rack}")  # per test: every test starts clean
    assert done.returncode == 0, done.stdout + done.stderr


def test_module_scope_keeps_a_file_on_one_board_of_its_group(
    tmp_path: Path, start_virtual_boards
) -> None:
    boards = start_virtual_boards(2)
    rack = rack_file(tmp_path / "rack.toml", boards)
    for name in ("a", "b", "c"):  # each file's second test needs its first test's board
        (tmp_path / f"test_{name}.py").write_text(textwrap.dedent(SCOPED.format(expected=True)))

    done = run_pytest(tmp_path, f"--hil-rack={rack}", "-n", "2", "--hil-reset-scope=module")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout


def test_the_reset_marker_sets_the_scope_of_one_file(tmp_path: Path, start_virtual_boards) -> None:
    boards = start_virtual_boards(1)
    rack = rack_file(tmp_path / "rack.toml", boards)
    (tmp_path / "test_marked.py").write_text(
        'import pytest\npytestmark = pytest.mark.reset("soft", scope="module")\n'
        + textwrap.dedent(SCOPED.format(expected=True))
    )

    done = run_pytest(tmp_path, f"--hil-rack={rack}")

    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_reset_scope_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    done = run_pytest(tmp_path, "--hil-reset-scope=session")
    assert done.returncode == 4
    assert "--hil-reset-scope must be one of test, class, module" in done.stderr
