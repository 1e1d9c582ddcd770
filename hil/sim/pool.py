"""Virtual boards for one test run, started by whichever process needs them first.

With no rack and no port, a pytest run uses virtual boards. Under xdist the controller runs no
tests, so it cannot know whether boards are needed; instead the first worker that asks starts the
run's server (under a file lock in the run directory) and every worker leases from it like from a
real rack. The controller stops it when the run ends.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

import hil.sim
from hil.errors import SimError
from hil.rack import Board, Capabilities, Flasher, Rack, SdSlot

#: Card slot and size of every run-started virtual board (ESP32-style machine.SDCard(slot=2)).
SD_SLOT = 2
SD_SIZE = "16M"


def sim_rack(state_dir: Path, count: int, lock_dir: Path, firmware: str | None = None) -> Rack:
    """The rack of the run's virtual boards, known before any of them runs; ``firmware`` pins
    them to a firmware id of the manifest (they start on the interpreter's own version)."""
    boards = tuple(board_entry(state_dir / f"vb{i}", firmware) for i in range(count))
    return Rack(boards=boards, lock_dir=str(lock_dir))


def ensure_started(state_dir: Path, count: int, owner_pid: int) -> None:
    """Start the run's virtual boards unless another process of the run already has; they
    stop by themselves if the run's main process (``owner_pid``) dies without stopping them."""
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(state_dir.parent / "sim.lock"), timeout=120):
            if hil.sim.running_pid(state_dir) is None:  # not yet, or its server died
                hil.sim.start(state_dir, count, sd=SD_SIZE, sd_slot=SD_SLOT, owner_pid=owner_pid)
    except Timeout as e:
        raise SimError("another process of this run kept the virtual boards' start lock") from e


def board_entry(directory: Path, firmware: str | None = None) -> Board:
    """A rack entry for a running virtual board: reset, power and flashing through its socket."""
    return Board(
        id=directory.name,
        port=f"sim:{directory}",
        platform="unix",
        tags=("virtual",),
        capabilities=Capabilities(sd=SdSlot(driver="machine.SDCard", slot=SD_SLOT)),
        reset="sim",
        power="sim",
        flasher=Flasher(name="sim"),
        firmware=firmware,
    )


def stop(state_dir: Path) -> None:
    hil.sim.stop(state_dir)
