"""A test run's directory (``mpy-hil-run-<id>`` under the temp directory, tens of MB of board
images) does not outlive the run: a SIGTERM ends the run cleanly, and the directories of runs
killed with SIGKILL are removed by the next run.

pytest runs in a subprocess as users run it, on real virtual boards, with a temp directory of
the test's own (``TMPDIR``), so that other runs on the machine are neither seen nor touched.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hil import run_dirs
from hil.errors import ConfigError

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

WAITING_TEST = """
    import time
    from pathlib import Path

    def test_k(board):
        Path({flag!r}).write_text("x")
        time.sleep(600)  # the run is killed while it waits here
"""


def processes_of(temp: Path) -> list[str]:
    """Pids of processes whose command line names ``temp`` (servers, interpreters)."""
    found = subprocess.run(["pgrep", "-f", str(temp)], capture_output=True, text=True)
    return found.stdout.split()


@pytest.fixture
def waiting_run(tmp_path: Path):
    """Factory: a pytest run (subprocess) that holds a virtual board until it is killed; killed
    (its whole session) after the test in any case."""
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o700)
    runs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        """Start the run; return once its test holds the board (failing with its output if it
        ends or takes too long first)."""
        flag = tmp_path / f"flag{len(runs)}"
        log = tmp_path / f"run{len(runs)}.log"
        (tmp_path / "test_k.py").write_text(textwrap.dedent(WAITING_TEST.format(flag=str(flag))))
        with open(log, "wb") as out:
            run = subprocess.Popen(
                [*PYTEST, *args],
                cwd=tmp_path,
                env={**os.environ, "TMPDIR": str(temp)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        runs.append(run)
        deadline = time.monotonic() + 120
        while not flag.exists():
            if run.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the run did not reach its board: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        return run

    yield start, temp
    for run in runs:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_sigterm_ends_the_run_and_removes_its_directory(
    waiting_run, wait_until, workers: list[str]
) -> None:
    start, temp = waiting_run
    run = start(*workers)
    (run_dir,) = temp.glob("mpy-hil-run-*")
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert json.loads((run_dir / "owner.json").read_text())["pid"] == run.pid
    assert processes_of(temp)
    run.send_signal(signal.SIGTERM)  # to pytest alone, as a CI runner or `kill` does
    run.wait(timeout=60)
    assert list(temp.glob("mpy-hil-run-*")) == []
    wait_until(lambda: not processes_of(temp), 10, "the run's virtual boards to stop")


def test_the_next_run_removes_what_a_killed_run_left(waiting_run, wait_until, tmp_path) -> None:
    start, temp = waiting_run
    run = start()
    (left,) = temp.glob("mpy-hil-run-*")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    wait_until(lambda: not processes_of(temp), 10, "the killed run's virtual boards to stop")
    assert left.is_dir()  # SIGKILL: nobody could clean up

    alive = run_dirs.create(run_dirs.path_for("alive", temp), os.getpid())  # a running run's
    unowned = temp / "mpy-hil-run-young"  # being made by another run just now
    unowned.mkdir(mode=0o700)
    (tmp_path / "test_k.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run(
        PYTEST,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not left.exists()
    assert alive.is_dir() and unowned.is_dir()


def test_a_reused_pid_does_not_keep_a_directory(tmp_path: Path) -> None:
    """The owner is a pid *and* its start time: another process under that pid is not it."""
    directory = run_dirs.create(run_dirs.path_for("reused", tmp_path), os.getpid())
    record = json.loads((directory / "owner.json").read_text())
    record["started"] -= 1
    (directory / "owner.json").write_text(json.dumps(record))
    assert run_dirs.prune_stale(tmp_path) == [directory]
    assert not directory.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_users_run_directory_is_left_alone(tmp_path: Path) -> None:
    theirs = tmp_path / "mpy-hil-run-theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    os.utime(theirs, (0, 0))  # old and without an owner record: stale, were it ours
    assert run_dirs.prune_stale(tmp_path) == []
    assert theirs.is_dir()


def test_a_run_directory_that_exists_already_is_refused(tmp_path: Path) -> None:
    """Made by someone else under the run's name: never used (as tempfile.mkdtemp would not)."""
    path = run_dirs.path_for("taken", tmp_path)
    path.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="File exists"):
        run_dirs.create(path, os.getpid())
    assert list(path.iterdir()) == []
