"""A failure's REPL session in the terminal is its last lines; the line that says how many came
before says where the rest is, for real (issue 14): the report's REPL session when Allure
records, the ``--hil-log-dir`` file when one is written, else how to keep the whole session.
Run by pytest in a subprocess on a virtual board, the way a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from user_project import run_pytest

LONG_TEST = """
def test_long(board):
    for i in range(45):
        board.exec(f"x{i} = {i}")
    assert board.eval("x44") == 0
"""


def run(project: Path, *args: str) -> str:
    done = run_pytest(project, *args, columns=200)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def earlier(out: str) -> str:
    section = out[out.index("REPL session of board") :]
    match = re.search(r"^# \(\d+ earlier lines: (.*)\)$", section, re.MULTILINE)
    assert match, section
    return match.group(1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_long.py").write_text(LONG_TEST)
    return tmp_path


def test_without_a_report_or_log_it_says_how_to_keep_the_session(project: Path) -> None:
    out = run(project)
    assert earlier(out) == "run with --alluredir or --hil-log-dir to keep the whole session"
    assert "report" not in earlier(out)


def test_with_a_log_dir_it_names_the_file_that_holds_the_session(project: Path) -> None:
    out = run(project, "--hil-log-dir", "logs")
    where = earlier(out)
    assert where.startswith("see ") and "report" not in where, where
    path = Path(where.removeprefix("see "))
    path = path if path.is_absolute() else project / path
    session = path.read_text()
    assert ">>> x0 = 0" in session and ">>> x44" in session  # the whole of it


def test_with_allure_it_points_at_the_reports_session(project: Path) -> None:
    pytest.importorskip("allure_pytest", reason="allure-pytest (the 'report' extra) is missing")
    out = run(project, "--alluredir", "results")
    assert earlier(out) == "see the report's REPL session"
