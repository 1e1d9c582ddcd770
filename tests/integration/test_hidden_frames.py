"""Our frames stay out of a failing board test's traceback, through pytest's public
``__tracebackhide__`` (``hil.report.pytest_hooks``): the user's line and the board's traceback
remain, ``--full-trace`` still shows everything, and a test without a board keeps our frames.

A user's project in ``tmp_path``, run by pytest in a subprocess on a virtual board, as a user runs
it.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from user_project import run_pytest

PROJECT = """
from hil.board import Board


def test_put_into_a_missing_directory(board):
    board.put(b"hello", "/no-such-dir/h.txt")


def test_without_a_board():
    Board.open("/dev/hil-no-such-port")
"""

#: A frame of ours as pytest prints it: ``/.../hil/boardput.py:52: in put`` or ``hil/repl.py:327:``.
OUR_FRAME = re.compile(r"(^|[\s/])hil/[\w/]+\.py:\d+:", re.MULTILINE)


def run_project(tmp_path: Path, *args: str) -> str:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "test_user.py").write_text(textwrap.dedent(PROJECT))
    done = run_pytest(project, "-p", "no:randomly", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def section(out: str, test: str) -> str:
    """The failure section of ``test`` in pytest's output (up to the next section)."""
    start = re.search(rf"^_+ {test}(\[.*\])? _+$", out, re.MULTILINE)
    assert start is not None, out
    rest = out[start.end() :]
    end = re.search(r"^(_{3,} \w|={3,} )", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_project(tmp_path_factory.mktemp("hidden"))


def test_a_board_test_shows_the_users_line_and_the_board_not_our_frames(default_run: str) -> None:
    failure = section(default_run, "test_put_into_a_missing_directory")
    assert '>       board.put(b"hello", "/no-such-dir/h.txt")' in failure  # the user's line
    assert "RemoteError: vb0: the board raised OSError: [Errno 2] ENOENT" in failure
    assert "OSError: [Errno 2] ENOENT" in failure.split("REPL session of board")[1]
    # put passes through hil/actions.py, board.py, boardput.py and repl.py: none of them shows
    assert not OUR_FRAME.search(failure), failure


def test_a_test_without_a_board_keeps_our_frames(default_run: str) -> None:
    # this test runs after the board test has failed through the same modules of ours
    failure = section(default_run, "test_without_a_board")
    assert "hil/board.py:" in failure and "hil/transport.py:" in failure, failure


def test_full_trace_shows_our_frames_again(tmp_path: Path) -> None:
    out = run_project(tmp_path, "--full-trace", "-k", "missing_directory")
    failure = section(out, "test_put_into_a_missing_directory")
    assert "hil/boardput.py:" in failure and "hil/repl.py:" in failure, failure
