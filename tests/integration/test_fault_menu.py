"""The fault menu in live operations (issue 13's proof), on a unix virtual board: every fault
injected while exec, eval, put+get and deploy run; 0 wrong values returned as success and 0
failures that are not infrastructure errors. ``bench/fault_menu.py`` runs the same menu for
longer and on the micro:bit kind too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fault_menu.py"


def test_every_fault_in_live_operations_gives_right_values_or_infrastructure_errors() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1", "--kinds", "unix", "--op-timeout", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    match = re.search(r"right (\d+), infrastructure errors (\d+), wrong values (\d+), "
                      r"mis-categorised (\d+)", summary)  # fmt: skip
    assert match, proc.stdout + proc.stderr
    right, infra, wrong, miscategorised = map(int, match.groups())
    assert (wrong, miscategorised) == (0, 0), proc.stdout
    assert right + infra == 9 * 4  # every fault met every operation
    assert right >= 12 and infra >= 8, proc.stdout  # the faults did bite, and not everything
    assert proc.returncode == 0, proc.stdout + proc.stderr
