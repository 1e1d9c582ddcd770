"""What a person reads when the run goes wrong at its edges, run by pytest in a subprocess as a
user runs it: boards of a rack that are not there (one line each, counted under their board, named
in the summary, not waited for like a board coming back), a test skipped by its marker (no REPL
session of somebody else's), and a bench board (``--hil-port``) whose every test has its free-heap
change, the first one included.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from user_project import allure_results, attachment, run_pytest

TWO_TESTS = """
def test_adds(board):
    assert board.eval("1 + 1") == 2


def test_again(board):
    assert board.eval("2 + 2") == 4
"""

SKIPPED_BETWEEN = """
import pytest


def test_a(board):
    board.exec("x = 1")


@pytest.mark.board(platform="esp32")
def test_needs_an_esp32(board):
    board.exec("y = 2")


@pytest.mark.board(capabilities=["wifi"])
def test_needs_wifi(board):
    board.exec("z = 3")


def test_b(repl):
    repl.exec("w = 4")
"""


def pytest_run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pytest(project, *args, timeout=300)


def test_boards_that_are_not_there_are_one_line_each_and_counted(tmp_path: Path) -> None:
    (tmp_path / "rack.toml").write_text(
        f'lock_dir = "{tmp_path / "locks"}"\n'
        + "".join(
            f'[[boards]]\nid = "ghost-{n}"\nport = "{tmp_path}/ttyGHOST{n}"\nplatform = "esp32"\n'
            for n in "ab"
        )
    )
    (tmp_path / "test_first.py").write_text(textwrap.dedent(TWO_TESTS))
    done = pytest_run(tmp_path, "--hil-rack", "rack.toml")
    out = done.stdout
    assert done.returncode == 1, out
    assert "Traceback" not in out and "hil/" not in out, out  # no frames, ours or pyserial's
    for n in "ab":
        line = (
            f"ghost-{n}: cannot connect: cannot open port {tmp_path}/ttyGHOST{n}: No such file "
            "or directory (quarantined for this run) [infrastructure fault]"
        )
        assert line in out.splitlines(), out
    table = out[out.index(" mpy-hil ") :].splitlines()
    assert table[1].split()[:5] == ["board", "passed", "failed", "infra", "skipped"]
    assert [line.split()[:5] for line in table[2:4]] == [
        ["ghost-a", "0", "0", "1", "0"],
        ["ghost-b", "0", "0", "1", "0"],
    ]
    assert "failures by fault: 2 = 2 infrastructure" in table
    assert any(line.startswith("quarantined ghost-a: cannot connect: ") for line in table)


def test_a_skipped_test_carries_no_session_of_another_test(tmp_path: Path) -> None:
    pytest.importorskip("allure_pytest", reason="allure-pytest is not installed")
    (tmp_path / "test_skips.py").write_text(textwrap.dedent(SKIPPED_BETWEEN))
    done = pytest_run(tmp_path, "--hil-sim=1", "--alluredir", "results")
    assert done.returncode == 0, done.stdout[-3000:]
    found = allure_results(tmp_path)
    assert found["test_needs_an_esp32"]["status"] == "skipped"
    assert found["test_needs_wifi"]["status"] == "skipped"
    for name in ("test_needs_an_esp32", "test_needs_wifi"):
        session = attachment(tmp_path, found[name], "REPL session") or ""
        assert "x = 1" not in session and "w = 4" not in session, session
    assert ">>> x = 1" in (attachment(tmp_path, found["test_a"], "REPL session") or "")
    assert ">>> w = 4" in (attachment(tmp_path, found["test_b"], "REPL session") or "")


def test_a_bench_boards_every_test_has_its_free_heap_change(
    tmp_path: Path, virtual_board: Any
) -> None:
    pytest.importorskip("allure_pytest", reason="allure-pytest is not installed")
    (tmp_path / "test_skips.py").write_text(textwrap.dedent(SKIPPED_BETWEEN))
    done = pytest_run(tmp_path, "--hil-port", str(virtual_board.port), "--alluredir", "results")
    assert done.returncode == 0, done.stdout[-3000:]
    for name in ("test_a", "test_b"):  # the first test, and one through the repl fixture
        parameters = {p["name"] for p in allure_results(tmp_path)[name]["parameters"]}
        assert "free heap change" in parameters, (name, parameters)


HANGS_AT_THE_END = """
from hil.sim.control import SimControl


def test_a_hangs_the_board_after_its_last_answer(board, hil_board_entry):
    assert board.eval("1 + 1") == 2
    SimControl(hil_board_entry.port_spec.value).fault("hang")


def test_b_finds_it_recovered(board):
    assert board.eval("2 + 2") == 4
"""


def test_a_board_that_dies_after_its_last_good_answer_is_recovered(tmp_path: Path) -> None:
    """The health check is skipped only when the heap measured after the test came back; a
    board silent by then is checked, recovered, and the next test runs."""
    (tmp_path / "test_hang.py").write_text(textwrap.dedent(HANGS_AT_THE_END))
    done = pytest_run(
        tmp_path, "--hil-sim=1", "-rA", "--log-level=WARNING", "--junitxml=results.xml"
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout
    assert "recovered by hard reset" in done.stdout, done.stdout[-3000:]
    # the silent board's health check (its 5 s) and recovery are not the test's board time
    import xml.etree.ElementTree as ET

    case = next(
        c for c in ET.parse(tmp_path / "results.xml").iter("testcase") if "test_a_" in c.get("name")
    )
    seconds = {p.get("name"): p.get("value") for p in case.iter("property")}["hil_board_seconds"]
    assert float(seconds) < 5.0, seconds
