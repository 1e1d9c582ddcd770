"""The pytest plugin as users run it: pytest in a subprocess, on virtual boards."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: pytest as a user runs it, in a subprocess (no cache dir left in tmp_path)
# per-board runs: these tests are about what happens on each board
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--hil-spread=board"]

RECORD = """
import json, os, time

def record(board, log):
    with open(log, "a") as f:
        f.write(json.dumps({
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "run": os.environ.get("RUN_NAME", ""),
            "uid": board.identity().unique_id,
            "t": time.time(),
        }) + "\\n")
"""


def run_pytest(
    directory: Path, *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PYTEST, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def sim_rack(path: Path, boards, **extra: str) -> Path:
    """A rack file naming running virtual boards by their state directories."""
    lines = [f'lock_dir = "{path.parent / "locks"}"']
    for board in boards:
        lines += [
            "[[boards]]",
            f'id = "{board.name}"',
            f'port = "sim:{board.directory}"',
            'platform = "unix"',
            'reset = "sim"',
            *(f"{k} = {v}" for k, v in extra.items()),
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_no_option_runs_on_virtual_boards(tmp_path: Path) -> None:
    write(tmp_path, "test_a.py", "def test_a(board):\n    assert board.eval('6*7') == 42\n")
    done = run_pytest(tmp_path, "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_a.py::test_a[vb0]" in done.stdout


def test_four_workers_get_four_different_boards(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write(tmp_path, "record.py", RECORD)
    write(
        tmp_path,
        "test_many.py",
        f"""
        import pytest
        from record import record

        @pytest.mark.parametrize("n", range(3))
        def test_who(board, n):
            record(board, {str(log)!r})
        """,
    )
    done = run_pytest(tmp_path, "-n", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    seen = records(log)
    assert len(seen) == 12  # 3 tests x 4 boards
    by_worker: dict[str, set[str]] = {}
    for r in seen:
        by_worker.setdefault(r["worker"], set()).add(r["uid"])
    assert len(by_worker) == 4
    assert all(len(uids) == 1 for uids in by_worker.values()), by_worker
    assert len({uid for uids in by_worker.values() for uid in uids}) == 4


def test_two_runs_never_share_a_board(tmp_path: Path, start_virtual_boards) -> None:
    boards = start_virtual_boards(2)
    rack = sim_rack(tmp_path / "rack.toml", boards)
    log = tmp_path / "log.jsonl"
    write(tmp_path, "record.py", RECORD)
    write(
        tmp_path,
        "test_share.py",
        f"""
        import time, pytest
        from record import record

        @pytest.mark.parametrize("n", range(4))
        def test_hold(board, n):
            record(board, {str(log)!r})
            time.sleep(0.2)  # hold the board a while so that the other run must wait for it
            record(board, {str(log)!r})
        """,
    )
    runs = [
        subprocess.Popen(
            [*PYTEST, f"--hil-rack={rack}"],
            cwd=tmp_path,
            env={**os.environ, "RUN_NAME": name},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("A", "B")
    ]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    spans: dict[str, list[tuple[float, float, str]]] = {}
    seen = records(log)
    for run_name in ("A", "B"):
        mine = [r for r in seen if r["run"] == run_name]
        for start, end in zip(mine[::2], mine[1::2], strict=True):
            spans.setdefault(start["uid"], []).append((start["t"], end["t"], run_name))
    for uid, board_spans in spans.items():
        board_spans.sort()
        for (_, end, run_a), (start, _, run_b) in itertools.pairwise(board_spans):
            assert run_a == run_b or start >= end, f"board {uid} shared by runs {run_a} and {run_b}"


def test_kill_9_of_a_run_frees_its_board(tmp_path: Path, start_virtual_boards, wait_until) -> None:
    (board,) = start_virtual_boards(1)
    rack = sim_rack(tmp_path / "rack.toml", [board])
    flag = tmp_path / "holding"
    waiting = tmp_path / "waiting"
    write(
        tmp_path,
        "conftest.py",
        f"""
        import os
        from pathlib import Path

        def pytest_runtest_setup(item):  # runs before the board fixture asks for its lease
            if os.environ.get("RUN_NAME") == "waiter":
                Path({str(waiting)!r}).write_text("x")
        """,
    )
    write(
        tmp_path,
        "test_hold.py",
        f"""
        import os, time
        from pathlib import Path

        def test_hold(board):
            if os.environ.get("RUN_NAME") == "holder":
                Path({str(flag)!r}).write_text("x")
                time.sleep(600)  # held until kill -9
        """,
    )
    holder = subprocess.Popen(
        [*PYTEST, f"--hil-rack={rack}"],
        cwd=tmp_path,
        env={**os.environ, "RUN_NAME": "holder"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(flag.exists, 60, "the first run to hold the board")
        waiter = subprocess.Popen(
            [*PYTEST, f"--hil-rack={rack}", "--hil-lease-timeout=60"],
            cwd=tmp_path,
            env={**os.environ, "RUN_NAME": "waiter"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_until(waiting.exists, 60, "the second run to ask for the board")
        assert waiter.poll() is None  # it waits: the board is held
        os.killpg(holder.pid, signal.SIGKILL)
        out = waiter.communicate(timeout=120)[0]
        assert waiter.returncode == 0, out
        assert "1 passed" in out
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def test_hung_board_is_recovered(tmp_path: Path) -> None:
    write(
        tmp_path,
        "test_hang.py",
        """
        import pytest
        from hil.sim.control import SimControl

        def test_1_hangs(board, hil_board_entry):
            SimControl(hil_board_entry.port_spec.value).fault("hang")
            board.exec("print(1)", timeout=2)

        def test_2_board_is_back(board):
            assert board.eval("1 + 1") == 2
        """,
    )
    done = run_pytest(tmp_path, "-rA")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED test_hang.py::test_1_hangs[vb0]" in done.stdout
    assert "BoardTimeout" in done.stdout and "[infrastructure fault]" in done.stdout
    assert "PASSED test_hang.py::test_2_board_is_back[vb0]" in done.stdout
    assert "failures by fault: 1 = 1 infrastructure" in done.stdout


def test_dead_board_is_quarantined_and_the_others_carry_on(
    tmp_path: Path, start_virtual_boards
) -> None:
    good, bad = start_virtual_boards(2)
    rack = tmp_path / "rack.toml"
    rack.write_text(
        f'lock_dir = "{tmp_path / "locks"}"\n'
        f'[[boards]]\nid = "good"\nport = "sim:{good.directory}"\nplatform = "unix"\n'
        'reset = "sim"\n'
        f'[[boards]]\nid = "bad"\nport = "sim:{bad.directory}"\nplatform = "unix"\n'
        'reset = ["false"]\n'  # its reset switch is broken: recovery must fail
    )
    write(
        tmp_path,
        "test_dead.py",
        """
        from hil.sim.control import SimControl

        def test_1(board, hil_board_entry):
            if hil_board_entry.id == "bad":
                SimControl(hil_board_entry.port_spec.value).fault("hang")
                board.exec("print(1)", timeout=2)

        def test_2(board):
            assert board.eval("1") == 1
        """,
    )
    done = run_pytest(tmp_path, f"--hil-rack={rack}", "-rA")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "PASSED test_dead.py::test_1[good]" in out
    assert "PASSED test_dead.py::test_2[good]" in out
    assert "FAILED test_dead.py::test_1[bad]" in out
    assert "ERROR test_dead.py::test_2[bad]" in out
    assert "is quarantined in this run" in out and "Traceback" not in out, out
    assert "quarantined bad: board stopped answering" in out


def test_marker_selection_and_skip_reasons(tmp_path: Path) -> None:
    write(
        tmp_path,
        "test_markers.py",
        """
        import pytest

        @pytest.mark.board(platform="unix", capabilities=["sd"])
        def test_unix_with_card(board):
            pass

        @pytest.mark.board(platform="esp32")
        def test_esp32_only(board):
            pass

        @pytest.mark.board(tags=["wifi"])
        def test_needs_wifi(board):
            pass
        """,
    )
    done = run_pytest(tmp_path, "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED test_markers.py::test_unix_with_card[vb0]" in done.stdout
    assert "no board matches (platform='esp32'): vb0: platform unix" in done.stdout
    assert "lacks tag wifi" in done.stdout


def test_malformed_rack_is_a_one_line_usage_error(tmp_path: Path) -> None:
    rack = tmp_path / "rack.toml"
    rack.write_text('[[boards]]\nid = "a"\nport = 3\nplatform = "esp32"\n')
    write(tmp_path, "test_x.py", "def test_x(board):\n    pass\n")
    done = run_pytest(tmp_path, f"--hil-rack={rack}")
    assert done.returncode == 4
    assert "Traceback" not in done.stdout + done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(error_lines) == 1
    assert "rack.toml" in error_lines[0] and "'a'" in error_lines[0] and "port" in error_lines[0]


@pytest.mark.parametrize("flag", ["--hil-reset=sideways", "--hil-sim=zero"])
def test_bad_options_are_usage_errors(tmp_path: Path, flag: str) -> None:
    write(tmp_path, "test_x.py", "def test_x(board):\n    pass\n")
    done = run_pytest(tmp_path, flag)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr


def test_ini_options_work_like_flags(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nhil_sim = 2\nhil_reset = none\n")
    write(tmp_path, "test_x.py", "def test_x(board):\n    pass\n")
    done = run_pytest(tmp_path, "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_x[vb0]" in done.stdout and "test_x[vb1]" in done.stdout


def test_transcript_in_report_and_log_dir(tmp_path: Path) -> None:
    write(tmp_path, "test_t.py", "def test_t(board):\n    board.exec('undefined_thing')\n")
    done = run_pytest(tmp_path, f"--hil-log-dir={tmp_path / 'logs'}")
    assert done.returncode == 1
    assert "REPL session of board vb0" in done.stdout
    assert "NameError" in done.stdout
    logs = sorted((tmp_path / "logs").glob("*.txt"))
    assert [p.name.endswith(".wire.txt") for p in logs] == [False, True]
    assert ">>> undefined_thing" in logs[0].read_text()  # the REPL session
    assert "<CTRL-D>" in logs[1].read_text()  # every byte


def test_runs_leave_no_virtual_board_behind(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"  # the run's own temp dir: its run directory goes there
    temp.mkdir()
    write(tmp_path, "test_a.py", "def test_a(board):\n    pass\n")
    done = run_pytest(tmp_path, "-n", "2", env={"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stdout + done.stderr
    found = subprocess.run(["pgrep", "-f", str(temp)], capture_output=True, text=True)
    assert found.stdout.split() == []  # no server, no interpreter of that run
    assert list(temp.glob("mpy-hil-run-*")) == []


def test_bench_port_runs_on_that_one_board(tmp_path: Path, start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1)
    uid = board.control.status()["uid"]
    write(
        tmp_path,
        "test_bench.py",
        f"""
        import pytest

        def test_on_the_bench_board(board, hil_board_entry):
            assert board.identity().unique_id == {uid!r}
            assert hil_board_entry.platform == "unix"  # asked from the board itself

        @pytest.mark.board(platform="rp2")
        def test_not_for_this_board(board):
            pass
        """,
    )
    done = run_pytest(tmp_path, f"--hil-port={board.port}", "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout


def test_board_on_wrong_firmware_is_flashed_at_session_start(tmp_path: Path) -> None:
    manifest = Path(__file__).resolve().parents[2] / "firmware" / "manifest.toml"
    write(
        tmp_path,
        "test_fw.py",
        """
        def test_version(board):
            assert board.eval("__import__('os').uname().version").startswith("v1.29.0-hil.2 ")
        """,
    )
    done = run_pytest(
        tmp_path,
        "--hil-sim-firmware=virtual-v1.29.0-hil.2",
        f"--hil-firmware-manifest={manifest}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    never = run_pytest(
        tmp_path,
        "--hil-sim-firmware=virtual-v1.29.0-hil.2",
        f"--hil-firmware-manifest={manifest}",
        "--hil-flash=never",
    )
    assert never.returncode == 1  # left on the interpreter's own version
    assert "1 failed" in never.stdout and "AssertionError" in never.stdout


def test_flash_failure_quarantines_only_that_board(tmp_path: Path, start_virtual_boards) -> None:
    good, bad = start_virtual_boards(2)
    image = tmp_path / "fw.img"
    image.write_bytes(b"HILFW1\nversion=v9;date=x\n")  # a sha256 the manifest will not match
    (tmp_path / "manifest.toml").write_text(
        '[firmware."pinned"]\nplatform = "unix"\nimage = "fw.img"\n'
        f'sha256 = "{"0" * 64}"\nversion = "v9 on x"\nversion_from = "os.uname().version"\n'
    )
    rack = tmp_path / "rack.toml"
    rack.write_text(
        f'lock_dir = "{tmp_path / "locks"}"\n'
        f'[[boards]]\nid = "good"\nport = "sim:{good.directory}"\nplatform = "unix"\n'
        f'[[boards]]\nid = "bad"\nport = "sim:{bad.directory}"\nplatform = "unix"\n'
        'firmware = "pinned"\n[boards.flasher]\nname = "sim"\n'
    )
    write(tmp_path, "test_x.py", "def test_x(board):\n    assert board.eval('1') == 1\n")
    done = run_pytest(
        tmp_path,
        f"--hil-rack={rack}",
        f"--hil-firmware-manifest={tmp_path / 'manifest.toml'}",
        "-rA",
    )
    out = done.stdout
    assert "PASSED test_x.py::test_x[good]" in out, out
    assert "ERROR test_x.py::test_x[bad]" in out
    assert "is quarantined in this run" in out and "Traceback" not in out, out
    assert "refusing to flash" in out
    assert bad.control.status()["flashes"] == 0  # nothing was written


def test_killed_run_leaves_no_virtual_board_behind(tmp_path: Path, wait_until) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    flag = tmp_path / "running"
    write(
        tmp_path,
        "test_k.py",
        f"""
        import time
        from pathlib import Path

        def test_k(board):
            Path({str(flag)!r}).write_text("x")
            time.sleep(600)
        """,
    )
    run = subprocess.Popen(
        PYTEST,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(temp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(flag.exists, 60, "the run to use its virtual board")
        assert subprocess.run(["pgrep", "-f", str(temp)], capture_output=True).returncode == 0
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

        def gone() -> bool:
            return subprocess.run(["pgrep", "-f", str(temp)], capture_output=True).returncode == 1

        wait_until(gone, 10, "the killed run's virtual boards to stop")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_reset_marker_and_option(tmp_path: Path) -> None:
    write(
        tmp_path,
        "test_r.py",
        """
        import pytest

        CAUSE = "__import__('machine').reset_cause()"

        @pytest.mark.reset("hard")
        def test_after_hard_reset(board):
            assert board.eval(CAUSE) == 2  # HARD_RESET

        def test_after_soft_reset(board):
            assert board.eval(CAUSE) == 5  # SOFT_RESET

        @pytest.mark.reset("none")
        def test_state_kept_without_reset(board):
            board.exec("kept = 1")

        @pytest.mark.reset("none")
        def test_state_still_there(board):
            assert board.eval("kept") == 1
        """,
    )
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
