"""What a person reads after a run on a virtual board: the terminal and the Allure results.

A first test written outside this repository, run by pytest in a subprocess the way a user runs
it: a failure shows the user's frame (not ours), the board's traceback in a REPL session, the
per-board table whose fault counts add up; the Allure results carry steps titled by action, a
``REPL session`` and a ``wire`` attachment, fixture teardowns with real names, and what the
board spent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from user_project import allure_results

FIRST_TEST = """
def test_adds(board):
    assert board.eval("1 + 1") == 2


def test_board_raises(board):
    board.exec("import sys")
    board.exec("x = undefined_name + 1")


def test_assert_fails(board, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "main.py").write_text("print('hi')\\n" * 200)
    board.deploy(tmp_path / "lib")
    board.put(b"hello", "/h.txt")
    assert board.get("/h.txt") == b"bye"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    project = tmp_path_factory.mktemp("first-project")
    (project / "test_first.py").write_text(textwrap.dedent(FIRST_TEST))
    args = ["--alluredir", "results"]
    try:
        import allure_pytest  # noqa: F401
    except ImportError:
        args = []
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    return done, project


def test_a_failure_shows_the_users_frame_and_the_repl_session(
    run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    done, _ = run
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "hil/board.py" not in out and "hil/repl.py" not in out  # our frames are hidden
    assert '>       board.exec("x = undefined_name + 1")' in out  # the user's line stays
    section = out[out.index("REPL session of board") :]
    assert ">>> import sys\n>>> x = undefined_name + 1\nTraceback (most recent call last):" in (
        section
    )
    assert "NameError: name 'undefined_name' isn't defined" in section
    assert "<CTRL-" not in out and "R\\x01" not in out  # no protocol in sight
    # the helper programs of deploy/put/get fold into a line each
    assert "# deploy lib/ (1 files, 1 sent)\n# put /h.txt (5 B)\n# get /h.txt (5 B)" in out


def test_the_table_per_board_adds_up(run: tuple[subprocess.CompletedProcess, Path]) -> None:
    done, _ = run
    lines = done.stdout[done.stdout.index(" mpy-hil ") :].splitlines()
    header = lines[1].split()
    assert header[:5] == ["board", "passed", "failed", "infra", "skipped"]
    row = lines[2].split()
    assert row[:5] == [row[0], "1", "2", "0", "0"]  # disjoint: they add up to the 3 tests
    assert row[5:7][1] == "s"  # board time
    assert "failures by fault: 2 = 1 product + 1 assertion" in lines
    assert any(line.startswith(f"{row[0]}: firmware ") for line in lines)
    ours = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("=") and i)]
    assert all(len(line) <= 80 for line in ours if " " in line.strip()), ours  # pytest's: not


def titles(nodes: list[dict[str, Any]]) -> list[str]:
    out = []
    for node in nodes:
        out.append(node["name"])
        out.extend(titles(node.get("steps", [])))
    return out


def test_allure_steps_are_actions_and_the_repl_session_is_attached(
    run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    pytest.importorskip("allure_pytest")
    _, project = run
    tests = allure_results(project)
    failing = tests["test_assert_fails"]
    top = [s["name"] for s in failing["steps"]]
    assert top == ["deploy lib/ (1 files, 1 sent)", "put /h.txt (5 B)", "get /h.txt (5 B)"]
    every = titles(failing["steps"])
    assert not [t for t in every if "_hil" in t or "<CTRL" in t or t.startswith("exec: A")]
    assert [a["name"] for a in failing["attachments"]] == ["REPL session", "wire"]
    session = (project / "results" / failing["attachments"][0]["source"]).read_text()
    assert session.startswith("# soft reset (Ctrl-D)")
    assert "# put /h.txt (5 B)" in session
    params = {p["name"]: p["value"] for p in failing["parameters"]}
    assert params["board time"].endswith(" s'") or params["board time"].endswith(" s")
    assert "free heap change" in params
    raises = tests["test_board_raises"]
    assert [s["name"] for s in raises["steps"]] == [
        "exec: import sys",
        "exec: x = undefined_name + 1",
    ]
    assert tests["test_adds"]["steps"][0]["name"] == "eval: 1 + 1"


def test_fixture_teardowns_have_real_names(run: tuple[subprocess.CompletedProcess, Path]) -> None:
    pytest.importorskip("allure_pytest")
    _, project = run
    names = set()
    for path in (project / "results").glob("*-container.json"):
        container = json.loads(path.read_text())
        names.update(f["name"] for f in container.get("befores", []) + container.get("afters", []))
    assert "board teardown" in names
    assert not [n for n in names if "::" in n]


def test_the_report_environment_has_an_overview_per_board(
    run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    pytest.importorskip("allure_pytest")
    _, project = run
    properties = (project / "results" / "environment.properties").read_text().splitlines()
    (overview,) = [line for line in properties if line.startswith("board.")]
    assert "=1 passed, 2 failed, 0 infrastructure, 0 skipped; board time " in overview
    assert "free heap/test" in overview
    assert any(line.startswith("firmware.") for line in properties)
    assert any(line.startswith("capabilities.") for line in properties)
