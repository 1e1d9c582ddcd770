"""Every bad input is a clear error: an exit code and one line that names what and where, marked
as the user's ("[usage fault]"), never a traceback, a dead link or a wait for a timeout.

The ``hil sim`` command and the pytest options, run as users run them (subprocesses).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hil.sim
from hil.cli import build_parser
from hil.errors import ConfigError, SimError

HIL = [sys.executable, "-m", "hil.cli"]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]


def run_hil(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout=90):
    return subprocess.run(
        [*HIL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def one_usage_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The run failed with exit 2 and said so in one line, marked usage, naming ``words``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith("[usage fault]"), lines[0]
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def sim_dir(tmp_path: Path):
    """A state directory whose server (if any test starts one) is stopped afterwards."""
    state = tmp_path / "state"
    yield state
    hil.sim.stop(state)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["start", "-n", "0"], ["-n/--count", "'0'"]),
        (["start", "-n", "-3"], ["-n/--count", "'-3'"]),
        (["start", "--sd", "12Q"], ["--sd", "12Q"]),
        (["start", "--sd-slot", "-1"], ["--sd-slot"]),
        (["start", "--baud", "-9600"], ["--baud"]),
        (["start", "--timeout", "nan"], ["--timeout", "nan"]),
        (["start", "--timeout", "0"], ["--timeout"]),
        (["fault", "vb0", "stall", "--seconds", "nan"], ["--seconds", "nan"]),
        (["fault", "vb0", "stall", "--seconds", "-1"], ["--seconds"]),
        (["fault", "vb0", "drop", "--count", "-5"], ["--count", "-5"]),
        (["fault", "vb0", "raw_paste_abort", "--after", "x"], ["--after", "'x'"]),
        (["baud", "vb0", "-5"], ["baud rate", "-5"]),
        (["card", "vb0", "insert", "--slot", "-2"], ["--slot"]),
    ],
)
def test_bad_sim_option_is_one_usage_line_and_starts_nothing(
    sim_dir: Path, args: list[str], words: list[str]
) -> None:
    done = run_hil("sim", args[0], "--state-dir", str(sim_dir), *args[1:])
    one_usage_line(done, *words)
    assert hil.sim.running_pid(sim_dir) is None
    assert not sim_dir.exists()  # refused before anything was made


def test_state_dir_that_cannot_be_made_is_one_usage_line(tmp_path: Path) -> None:
    done = run_hil("sim", "start", "--state-dir", "/proc/x")
    one_usage_line(done, "/proc/x", "cannot create the state directory")


def test_unknown_board_is_one_usage_line(sim_dir: Path) -> None:
    done = run_hil("sim", "reset", "vb7", "--state-dir", str(sim_dir))
    one_usage_line(done, "vb7", str(sim_dir))


def test_missing_firmware_image_is_refused_before_the_board_is_asked(
    start_virtual_boards, tmp_path: Path
) -> None:
    (board,) = start_virtual_boards(1)
    state = board.directory.parent
    done = run_hil("sim", "flash", "vb0", str(tmp_path / "nope.bin"), "--state-dir", str(state))
    one_usage_line(done, "nope.bin", "firmware image")
    assert board.control.status()["flashes"] == 0


def test_negative_baud_leaves_the_link_working(start_virtual_boards) -> None:
    """It used to be accepted, and the board's link died of it."""
    (board,) = start_virtual_boards(1)
    state = board.directory.parent
    one_usage_line(run_hil("sim", "baud", "vb0", "-5", "--state-dir", str(state)), "-5")
    with pytest.raises(SimError, match="baud rate"):
        board.control.set_baud(-5)  # the control socket refuses it too, from any client
    from hil.board import Board

    with Board.open(board.port, name="vb0") as link:
        assert link.eval("6*7") == 42


def test_negative_fault_count_is_refused_by_the_control_socket(start_virtual_boards) -> None:
    (board,) = start_virtual_boards(1)
    for params in ({"count": -5}, {"seconds": float("nan")}, {"after": "x"}):
        kind = "drop" if "count" in params else "stall" if "seconds" in params else "drop"
        with pytest.raises(SimError, match="must be"):
            board.control.fault(kind, **params)
    assert board.control.status()["faults"]["drop"] == 0


def test_start_zero_boards_from_python_is_refused(sim_dir: Path) -> None:
    with pytest.raises(ConfigError, match="number of boards"):
        hil.sim.start(sim_dir, 0)
    assert hil.sim.running_pid(sim_dir) is None


def test_relative_state_dir_works(tmp_path: Path) -> None:
    """A relative --state-dir used to crash the board at once (its interpreter runs in /)."""
    try:
        done = run_hil("sim", "start", "--state-dir", "rel", "-n", "1", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        (port,) = done.stdout.split()
        assert port == str(tmp_path / "rel" / "vb0" / "port")
        status = run_hil("sim", "status", "--json", "--state-dir", "rel", cwd=tmp_path)
        assert '"state": "ready"' in status.stdout
    finally:
        hil.sim.stop(tmp_path / "rel")


def test_relative_state_dir_from_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = hil.sim.start("rel", 1)
    try:
        assert hil.sim.running_pid(Path("rel")) == run.pid
        assert [board.name for board in hil.sim.find("rel")] == ["vb0"]
    finally:
        stopped = hil.sim.stop("rel")
        run.stop()
    assert stopped  # found by its relative name, as it was started


def fake_interpreter(tmp_path: Path, body: str) -> str:
    """A stand-in for the unix port: answers the version probe, then runs ``body`` (sh)."""
    script = tmp_path / "fake-micropython"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo v1.0.0; echo 2026-01-01; exit 0; fi\n' + body + "\n"
    )
    script.chmod(0o755)
    return str(script)


def test_start_reports_a_board_that_crashes_instead_of_waiting(
    sim_dir: Path, tmp_path: Path
) -> None:
    interpreter = fake_interpreter(tmp_path, "echo dying; exit 3")
    with pytest.raises(SimError) as caught:
        hil.sim.start(sim_dir, 1, interpreter=[interpreter], timeout=300)
    assert "crashed" in caught.value.what and "not ready within" not in caught.value.what
    assert hil.sim.running_pid(sim_dir) is None


def test_start_notices_a_server_that_died(sim_dir: Path, tmp_path: Path, wait_until) -> None:
    interpreter = fake_interpreter(tmp_path, "exec sleep 600")  # a board that never boots
    cli = subprocess.Popen(
        [*HIL, "sim", "start", "--state-dir", str(sim_dir), "--timeout", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HIL_MICROPYTHON": interpreter},
    )
    try:
        pid = wait_until(lambda: hil.sim.running_pid(sim_dir), 60, "the server to start")
        sock = sim_dir / "vb0" / "control.sock"
        wait_until(sock.exists, 60, "the board to be booting")  # start() waits on its state now
        os.kill(pid, signal.SIGKILL)
        _out, err = cli.communicate(timeout=60)  # not the 300 s of --timeout
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 2, err
    assert "server exited" in err and "not ready within" not in err


def test_not_ready_message_rounds_its_timeout(sim_dir: Path, tmp_path: Path) -> None:
    interpreter = fake_interpreter(tmp_path, "exec sleep 600")
    with pytest.raises(SimError) as caught:
        hil.sim.start(sim_dir, 1, interpreter=[interpreter], timeout=0.5)
    assert "within 0.5s" in caught.value.what


def test_missing_qemu_is_one_line_before_anything_starts(sim_dir: Path) -> None:
    done = run_hil(
        "sim",
        "start",
        "--kind",
        "microbit",
        "--state-dir",
        str(sim_dir),
        env={"HIL_QEMU": "/nonexistent/qemu-system-arm"},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "qemu" in lines[0].lower(), done.stderr
    assert not sim_dir.exists()  # preflight ran before the server (or its directory) existed


def test_missing_microbit_firmware_is_one_line(
    sim_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_MICROBIT_HEX", str(tmp_path / "none.hex"))
    with pytest.raises(ConfigError, match="not found") as caught:
        hil.sim.start(sim_dir, 1, kind="microbit")
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("[usage fault]")  # the machine's setup is the user's
    assert not sim_dir.exists()


WITHOUT_THE_SIM_EXTRA = """
import sys
sys.modules["micropython_unix"] = None  # as if the sim extra were not installed
sys.executable = "/nonexistent/bin/python"  # and no micropython next to the interpreter
from hil.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sim_start_without_the_sim_extra_names_it_in_one_line(sim_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HIL_MICROPYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_SIM_EXTRA, "sim", "start", "--state-dir", str(sim_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    one_usage_line(done, "pip install 'mpy-hil[sim]'")
    assert "--hil-port" not in done.stderr  # a pytest option: not for this command
    assert not sim_dir.exists()


def test_every_sim_option_has_a_help_text() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    sim = commands.choices["sim"]
    (verbs,) = [a for a in sim._actions if a.dest == "verb"]
    missing = [
        f"{verb} {action.option_strings or action.dest}"
        for verb, sub in verbs.choices.items()
        for action in sub._actions
        if action.dest != "help" and not action.help
    ]
    assert missing == []


# --- pytest options -----------------------------------------------------------------------------


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess:
    (directory / "test_a.py").write_text("def test_a(board):\n    pass\n")
    return subprocess.run(
        [*PYTEST, *args], cwd=directory, capture_output=True, text=True, timeout=120
    )


def usage_exit(done: subprocess.CompletedProcess, *words: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("ERROR:")]
    assert line.endswith("[usage fault]"), line
    for word in words:
        assert word in line, line


def test_missing_bench_port_fails_at_once_naming_it(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--hil-port", str(tmp_path / "ttyACM9"))
    usage_exit(done, "ttyACM9", "no such device")


def test_unwritable_log_dir_is_a_usage_error_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_pytest(tmp_path, "--hil-log-dir", str(blocker / "logs"))
    usage_exit(done, "--hil-log-dir", str(blocker / "logs"))
    assert "passed" not in done.stdout  # no test ran before the refusal


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_read_only_log_dir_is_a_usage_error_at_start(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(stat.S_IRUSR | stat.S_IXUSR)
    usage_exit(run_pytest(tmp_path, "--hil-log-dir", str(logs)), "not writable")


def test_rack_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    rack = tmp_path / "rack.toml"
    rack.write_bytes(b'# r\xe9seau\n[[boards]]\nid = "a"\nport = "/dev/null"\n')
    done = run_pytest(tmp_path, "--hil-rack", str(rack))
    usage_exit(done, "rack.toml", "not UTF-8", "0xe9")
