"""The board server watches the run that started it: an owner that has exited is gone, even as
a zombie its parent has not reaped yet (``hil.processes.pid_alive``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import hil.sim
from hil.processes import pid_alive


def test_an_owner_that_exited_unreaped_stops_the_server(tmp_path: Path, wait_until) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = hil.sim.start(tmp_path, 1, owner_pid=owner.pid)
        try:
            interpreter = run.boards[0].control.status()["pid"]
            owner.send_signal(signal.SIGKILL)  # not reaped: a zombie until the finally below
            wait_until(lambda: pid_alive(run.pid) is False, 15, "the server to stop")
            wait_until(lambda: pid_alive(interpreter) is False, 10, "its interpreter to stop")
            assert owner.returncode is None  # the owner was a zombie all along, never reaped
        finally:
            run.stop()
    finally:
        owner.kill()
        owner.wait()
