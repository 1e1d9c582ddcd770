"""Every built-in reset and power driver, run for real through ``hil.recovery``.

``command`` drivers run real subprocesses (small Python scripts written to ``tmp_path``);
``machine.reset``, ``soft`` and ``sim`` act on a running virtual board and we check that it
really rebooted (a name set before is gone, the board's own boot counters moved). ``dtr-rts``
needs modem-control lines, which a pty does not carry: its pulse is checked on a real pyserial
port on the virtual board's pty whose DTR/RTS changes are recorded instead of sent (the test
names say so), and on a plain pty it must fail as an infrastructure error.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from hil import recovery
from hil.board import Board as BoardLink
from hil.deadline import Deadline
from hil.errors import InfrastructureError
from hil.rack import Board as RackBoard
from hil.repl import Repl
from hil.sim import SimBoard
from hil.transport import POLL_SECONDS, Transport

#: A lab command that records its arguments and succeeds.
RECORDER = """
import json, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(sys.argv[2:]) + "\\n")
"""

#: A lab command that fails the way a relay tool does: a message on stderr, exit status 3.
FAILING = """
import sys
print("starting relay tool")
print("relay 2: no such channel on /dev/hidraw0", file=sys.stderr)
sys.exit(3)
"""

#: A lab command that hangs (writes its pid first, so the test can check it was killed).
HANGING = """
import os, sys, time
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
time.sleep(60)
"""

#: A lab command that presses a virtual board's reset button or cycles its power switch,
#: as a relay or a USB hub would for a real board; it records each run.
SIM_BUTTON = """
import json, sys
from hil.sim.control import SimControl

log, board_dir, action = sys.argv[1:4]
control = SimControl(board_dir)
if action == "reset":
    control.reset()
else:
    control.power(False)
    control.power(True)
with open(log, "a") as f:
    f.write(json.dumps([action, board_dir]) + "\\n")
"""


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def logged(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def entry(port: str = "/dev/ttyUSB0", **fields: Any) -> RackBoard:
    return RackBoard(id="bench-1", port=port, platform="unix", **fields)


def sim_entry(vb: SimBoard, **fields: Any) -> RackBoard:
    return RackBoard(id=vb.name, port=f"sim:{vb.directory}", platform="unix", **fields)


@pytest.fixture
def link(virtual_board: SimBoard) -> Iterator[BoardLink]:
    """A raw REPL connection to the virtual board, following its port across replugs."""
    board = BoardLink.open(lambda: virtual_board.port, name=virtual_board.name, wait=10.0)
    yield board
    board.close()


def counters(vb: SimBoard) -> dict[str, int]:
    status = vb.control.status()
    return {key: status[key] for key in ("boots", "soft_resets", "hard_resets")}


def mark_session(link: BoardLink) -> None:
    """Leave a name in ``__main__``: any reset takes it away."""
    link.exec("hil_marker = 1234")
    assert link.eval("hil_marker") == 1234


def marker_gone(link: BoardLink) -> bool:
    return link.eval("'hil_marker' in globals()") is False


# --- command ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["reset", "power"])
def test_command_runs_the_lab_program_with_its_arguments(tmp_path: Path, role: str) -> None:
    log = tmp_path / "calls.jsonl"
    recorder = script(tmp_path, "relay.py", RECORDER)
    board = entry(**{role: [sys.executable, str(recorder), str(log), "--port", "2", "cycle"]})

    if role == "reset":
        recovery.hard_reset(board, None)
    else:
        assert recovery.power_cycle(board, None) is True

    assert logged(log) == [["--port", "2", "cycle"]]


@pytest.mark.parametrize("role", ["reset", "power"])
def test_a_failing_command_names_command_board_and_its_error_line(
    tmp_path: Path, role: str
) -> None:
    failing = script(tmp_path, "relay.py", FAILING)
    board = entry(**{role: [sys.executable, str(failing), "--channel", "2"]})

    with pytest.raises(InfrastructureError) as info:
        if role == "reset":
            recovery.hard_reset(board, None)
        else:
            recovery.power_cycle(board, None)

    error = info.value
    assert error.where == "bench-1"
    assert str(failing) in error.what and "'--channel', '2'" in error.what
    assert f"{role} command" in error.what
    assert "exited with 3" in error.what
    assert "relay 2: no such channel on /dev/hidraw0" in error.what
    assert "starting relay tool" not in error.what  # stderr is what explains a failure
    assert "\n" not in str(error)


def test_a_hanging_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hanging = script(tmp_path, "hub.py", HANGING)
    board = entry(
        power={
            "name": "command",
            "options": {"argv": [sys.executable, str(hanging), str(pid_file)], "timeout": 1.0},
        }
    )

    started = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        recovery.power_cycle(board, None)
    elapsed = time.monotonic() - started

    assert "power command" in info.value.what and "timed out after 1" in info.value.what
    assert info.value.where == "bench-1"
    assert elapsed < 10, f"the 1 s timeout took {elapsed:.1f} s"  # not the command's 60 s
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left behind
        os.kill(pid, 0)


def test_a_command_reset_is_killed_when_the_callers_deadline_passes_first(
    tmp_path: Path, kill_later: list[int], wait_until: Callable[..., object]
) -> None:
    pid_file = tmp_path / "pid"
    hanging = script(tmp_path, "relay.py", HANGING)
    argv = [sys.executable, str(hanging), str(pid_file)]
    board = entry(reset={"name": "command", "options": {"argv": argv, "timeout": 50.0}})
    driver = recovery.build("reset", board.reset, board)

    with pytest.raises(InfrastructureError) as info:
        driver.reset(None, timeout=Deadline(3.0))  # a recovery with 3 s left

    what = info.value.what
    assert "reset command" in what and str(hanging) in what
    assert "the caller's deadline (3s) ran out before the command's own timeout (50s)" in what
    assert info.value.where == "bench-1"
    pid = int(pid_file.read_text())  # it had started
    kill_later.append(pid)
    assert wait_until(lambda: not alive(pid), 5, f"the command (pid {pid}) to be killed")


def test_a_command_reset_is_killed_at_its_own_timeout_when_that_passes_first(
    tmp_path: Path, kill_later: list[int], wait_until: Callable[..., object]
) -> None:
    pid_file = tmp_path / "pid"
    hanging = script(tmp_path, "relay.py", HANGING)
    argv = [sys.executable, str(hanging), str(pid_file)]
    board = entry(reset={"name": "command", "options": {"argv": argv, "timeout": 2.0}})

    with pytest.raises(InfrastructureError) as info:
        recovery.hard_reset(board, None, timeout=50.0)  # seconds work as well as a Deadline

    assert "reset command" in info.value.what
    assert "timed out after 2s (its own timeout)" in info.value.what
    assert "caller" not in info.value.what
    pid = int(pid_file.read_text())  # it had started
    kill_later.append(pid)
    assert wait_until(lambda: not alive(pid), 5, f"the command (pid {pid}) to be killed")


def test_a_command_reset_past_the_callers_deadline_is_not_run(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    recorder = script(tmp_path, "relay.py", RECORDER)
    board = entry(reset=[sys.executable, str(recorder), str(log), "cycle"])
    spent = Deadline(0.0)

    with pytest.raises(InfrastructureError, match=r"not run: the caller's deadline \(0s\)"):
        recovery.build("reset", board.reset, board).reset(None, timeout=spent)

    assert logged(log) == []  # no half a relay cycle


#: A lab command that prints what is not text (a tool dumping a device's raw answer), then fails.
BINARY_OUTPUT = """
import sys
sys.stderr.buffer.write(b"hub answered \\xff\\xfe\\x00\\n")
sys.exit(2)
"""

#: A wrapper that starts the real tool and waits for it (as a shell script does); both hang.
WRAPPER = """
import subprocess, sys, time
tool = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(str(tool.pid))
tool.wait()
"""


def test_a_command_printing_bytes_that_are_not_text_still_fails_cleanly(tmp_path: Path) -> None:
    tool = script(tmp_path, "hub.py", BINARY_OUTPUT)
    board = entry(power=[sys.executable, str(tool)])

    with pytest.raises(InfrastructureError, match=r"exited with 2: hub answered"):
        recovery.power_cycle(board, None)


@pytest.fixture
def kill_later() -> Iterator[list[int]]:
    """Pids that the test may leave behind when the code under test fails to end them."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_hanging_command_is_killed_with_what_it_started(
    tmp_path: Path, kill_later: list[int], wait_until: Callable[..., object]
) -> None:
    pid_file = tmp_path / "pid"
    wrapper = script(tmp_path, "wrapper.py", WRAPPER)
    board = entry(
        reset={
            "name": "command",
            "options": {"argv": [sys.executable, str(wrapper), str(pid_file)], "timeout": 2.0},
        }
    )

    with pytest.raises(InfrastructureError, match="timed out"):
        recovery.hard_reset(board, None)

    tool = int(pid_file.read_text())
    kill_later.append(tool)
    assert wait_until(lambda: not alive(tool), 5, f"the tool (pid {tool}) to be killed")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it is dead, waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_command_that_cannot_start_is_an_infrastructure_error(tmp_path: Path) -> None:
    board = entry(reset=[str(tmp_path / "no-such-relay-tool"), "--cycle"])

    with pytest.raises(InfrastructureError, match=r"reset command .*no-such-relay-tool.* failed"):
        recovery.hard_reset(board, None)


@pytest.mark.parametrize(("role", "action"), [("reset", "reset"), ("power", "power")])
def test_command_with_a_link_waits_until_the_board_answers_again(
    tmp_path: Path, virtual_board: SimBoard, link: BoardLink, role: str, action: str
) -> None:
    log = tmp_path / "calls.jsonl"
    button = script(tmp_path, "button.py", SIM_BUTTON)
    argv = [sys.executable, str(button), str(log), str(virtual_board.directory), action]
    board = sim_entry(virtual_board, **{role: argv})
    mark_session(link)
    before = counters(virtual_board)

    if role == "reset":
        recovery.hard_reset(board, link)
    else:
        recovery.power_cycle(board, link)

    assert logged(log) == [[action, str(virtual_board.directory)]]
    assert link.eval("6 * 7") == 42  # back in the raw REPL, through the same link
    assert marker_gone(link)
    after = counters(virtual_board)
    assert after["boots"] > before["boots"]
    if role == "reset":
        assert after["hard_resets"] == before["hard_resets"] + 1


# --- machine.reset and soft ---------------------------------------------------------------------


def test_machine_reset_reboots_the_board_and_reconnects(
    virtual_board: SimBoard, link: BoardLink
) -> None:
    board = sim_entry(virtual_board, reset="machine.reset")
    mark_session(link)
    before = counters(virtual_board)

    recovery.hard_reset(board, link, timeout=30)

    assert marker_gone(link)
    after = counters(virtual_board)
    assert after["boots"] == before["boots"] + 1
    assert after["hard_resets"] == before["hard_resets"] + 1
    assert after["soft_resets"] == before["soft_resets"]


def test_soft_reset_driver_soft_resets_only(virtual_board: SimBoard, link: BoardLink) -> None:
    board = sim_entry(virtual_board, reset="soft")
    mark_session(link)
    before = counters(virtual_board)

    recovery.hard_reset(board, link)

    assert marker_gone(link)
    after = counters(virtual_board)
    assert after["soft_resets"] == before["soft_resets"] + 1
    assert after["hard_resets"] == before["hard_resets"]


@pytest.mark.parametrize("reset", ["machine.reset", "soft", "dtr-rts"])
def test_a_reset_over_the_repl_without_a_link_says_it_needs_the_port(reset: str) -> None:
    with pytest.raises(InfrastructureError) as info:
        recovery.hard_reset(entry(reset=reset), None)

    assert info.value.where == "bench-1"
    assert f"reset driver {reset!r} needs the board's serial port" in info.value.what


# --- sim ----------------------------------------------------------------------------------------


def test_sim_reset_presses_the_reset_button(virtual_board: SimBoard, link: BoardLink) -> None:
    board = sim_entry(virtual_board, reset="sim")
    mark_session(link)
    before = counters(virtual_board)

    recovery.hard_reset(board, link)

    assert marker_gone(link)
    after = counters(virtual_board)
    assert after["hard_resets"] == before["hard_resets"] + 1
    assert after["boots"] == before["boots"] + 1


def test_sim_power_cycles_a_hung_board_back_to_life(
    virtual_board: SimBoard, link: BoardLink
) -> None:
    board = sim_entry(virtual_board, power="sim")
    mark_session(link)
    virtual_board.control.fault("hang")
    assert virtual_board.control.status()["state"] == "hung"
    before = counters(virtual_board)

    assert recovery.power_cycle(board, link) is True

    assert link.eval("6 * 7") == 42
    assert marker_gone(link)
    status = virtual_board.control.status()
    assert status["boots"] == before["boots"] + 1
    assert status["faults"]["hang"] is False


def test_sim_drivers_without_a_link_leave_the_board_booting(
    virtual_board: SimBoard, wait_until: Callable[..., object]
) -> None:
    board = sim_entry(virtual_board, reset="sim", power="sim")
    before = counters(virtual_board)

    recovery.hard_reset(board, None)
    wait_until(lambda: virtual_board.control.status()["state"] == "ready", 30, "reset board")
    assert recovery.power_cycle(board, None) is True
    wait_until(lambda: virtual_board.control.status()["state"] == "ready", 30, "powered board")

    after = counters(virtual_board)
    assert after["hard_resets"] == before["hard_resets"] + 1
    assert after["boots"] == before["boots"] + 2


@pytest.mark.parametrize(
    "port",
    [
        "usb-serial:E66118604B1F2B2A",
        "/dev/ttyUSB0",
    ],
)
def test_sim_drivers_refuse_a_board_that_is_not_virtual(port: str) -> None:
    board = entry(port=port, reset="sim")

    with pytest.raises(InfrastructureError) as info:
        recovery.hard_reset(board, None)

    assert info.value.where == "bench-1"
    assert "needs a virtual board's 'sim:' port" in info.value.what


def test_no_power_driver_means_no_power_cycle() -> None:
    assert recovery.power_cycle(entry(), None) is False


# --- dtr-rts ------------------------------------------------------------------------------------


class ModemLinesRecorded(serial.Serial):
    """A real pyserial port whose DTR/RTS changes are recorded, not sent: a pty carries no
    modem-control lines, so this is the one part of these tests that is not real."""

    def __init__(self, events: list[tuple[str, bool, float]], **options: Any) -> None:
        self._events = events
        self._recording = False
        super().__init__(**options)
        self._recording = True  # what open() sets is the OS default, not the driver's doing

    def _update_dtr_state(self) -> None:
        if self._recording:
            self._events.append(("dtr", self._dtr_state, time.monotonic()))

    def _update_rts_state(self) -> None:
        if self._recording:
            self._events.append(("rts", self._rts_state, time.monotonic()))


def test_dtr_rts_pulse_order_recorded_on_a_pty(virtual_board: SimBoard) -> None:
    events: list[tuple[str, bool, float]] = []
    opened: list[ModemLinesRecorded] = []

    def opener() -> ModemLinesRecorded:
        port = ModemLinesRecorded(
            events,
            port=virtual_board.port,
            baudrate=115200,
            timeout=POLL_SECONDS,
            write_timeout=10.0,
            exclusive=True,
        )
        opened.append(port)
        return port

    transport = Transport(opener, name=virtual_board.name)
    transport.connect(10.0)
    link = BoardLink(Repl(transport), name=virtual_board.name)
    try:
        link.repl.enter_raw()
        board = sim_entry(virtual_board, reset={"name": "dtr-rts", "options": {"hold": 0.3}})

        recovery.hard_reset(board, link)

        assert [(line, state) for line, state, _ in events] == [
            ("dtr", False),  # GPIO0 released: boot the firmware, not the bootloader
            ("rts", True),  # EN low
            ("rts", False),  # EN high again after the hold
        ]
        assert events[2][2] - events[1][2] >= 0.3
        assert len(opened) == 2  # the port was reopened after the pulse
        assert link.eval("6 * 7") == 42  # and the raw REPL entered again on it
    finally:
        link.close()


def test_dtr_rts_on_a_port_without_modem_lines_is_an_infrastructure_error(
    virtual_board: SimBoard, link: BoardLink
) -> None:
    # the real thing on a pty: setting the lines fails, and the error names the board
    board = sim_entry(virtual_board, reset="dtr-rts")

    with pytest.raises(InfrastructureError) as info:
        recovery.hard_reset(board, link)

    assert info.value.where == virtual_board.name
    assert info.value.what.startswith("could not pulse DTR/RTS: ")


def test_a_power_command_is_killed_when_the_callers_deadline_passes_first(
    tmp_path: Path, kill_later: list[int], wait_until: Callable[..., object]
) -> None:
    pid_file = tmp_path / "pid"
    hanging = script(tmp_path, "hub.py", HANGING)
    argv = [sys.executable, str(hanging), str(pid_file)]
    board = entry(power={"name": "command", "options": {"argv": argv, "timeout": 50.0}})
    driver = recovery.build("power", board.power, board)

    with pytest.raises(InfrastructureError) as info:
        driver.cycle(None, timeout=Deadline(3.0))  # a recovery with 3 s left

    assert "power command" in info.value.what
    assert "the caller's deadline (3s) ran out" in info.value.what
    pid = int(pid_file.read_text())
    kill_later.append(pid)
    assert wait_until(lambda: not alive(pid), 5, f"the command (pid {pid}) to be killed")
