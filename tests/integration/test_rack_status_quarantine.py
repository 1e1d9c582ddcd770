"""``hil rack status`` shows the quarantines of runs still going, not those a finished run left.

A quarantine lasts for its run (the run's report names it); its record stays in the lock
directory until the week-old prune. Real processes write the records (``Quarantine.add``, as a
test run's worker does), real leases are held, and the real command reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hil.rack import LeaseManager, Quarantine, Selector, load_rack

BOARDS = ("ended", "live", "leased", "reused")


def rack_file(tmp_path: Path, lock_dir: Path) -> Path:
    text = f'lock_dir = "{lock_dir}"\n'
    for board in BOARDS:
        text += f'[[boards]]\nid = "{board}"\nport = "/dev/ttyHIL-{board}"\nplatform = "unix"\n'
    path = tmp_path / "rack.toml"
    path.write_text(text)
    return path


def quarantine_from_a_process_that_ends(lock_dir: Path, run: str, board: str) -> None:
    """A worker of run ``run`` takes ``board`` out, then ends (as a finished run's do)."""
    code = (
        "import sys; from hil.rack import Quarantine; "
        "Quarantine.for_run(sys.argv[1], sys.argv[2], worker='gw0')"
        ".add(sys.argv[3], 'cannot connect: port gone')"
    )
    subprocess.run([sys.executable, "-c", code, str(lock_dir), run, board], check=True, timeout=60)


def status(rack: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", "rack", "status", str(rack)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_only_the_quarantines_of_runs_still_going_are_shown(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    rack = rack_file(tmp_path, lock_dir)
    quarantine_from_a_process_that_ends(lock_dir, "run-ended", "ended")
    Quarantine.for_run(lock_dir, "run-live", worker="gw1").add("live", "stopped answering")
    # a run whose quarantining worker ended while another of its workers holds a lease
    quarantine_from_a_process_that_ends(lock_dir, "run-leasing", "leased")
    manager = LeaseManager(load_rack(rack).boards, lock_dir, run="run-leasing", label="pytest")
    lease = manager.acquire(Selector(id="live"), timeout=5)
    # a record naming this process's pid from before it started: the pid was reused since
    reused = lock_dir / "runs" / "run-reused" / "quarantine"
    reused.mkdir(parents=True)
    record = {"board": "reused", "reason": "old", "since": time.time() - 10 * 365 * 86400}
    record.update(pid=os.getpid(), host=os.uname().nodename, worker="gw0")
    (reused / "reused.json").write_text(json.dumps(record))
    try:
        out = status(rack)
    finally:
        lease.release()
    words = " ".join(out.split())
    assert "live quarantined by run run-live: stopped answering" in words, out
    assert "leased quarantined by run run-leasing: cannot connect: port gone" in words, out
    assert "run-ended" not in out and "run-reused" not in out, out
    assert "ended quarantined" not in words and "reused quarantined" not in words, out


def test_status_leaves_a_missing_lock_dir_missing(tmp_path: Path) -> None:
    lock_dir = tmp_path / "no" / "locks"
    out = status(rack_file(tmp_path, lock_dir))
    assert "free" in out and "quarantined" not in out, out
    assert not (tmp_path / "no").exists()
