"""Virtual boards for one test run, started by whichever process needs them first.

With no rack and no port, a pytest run uses virtual boards. Under xdist the controller runs no
tests, so it cannot know whether boards are needed; instead the first worker that asks starts the
run's server (under a file lock in the run directory) and every worker leases from it like from a
real rack. The controller stops it when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

import hil.sim
from hil.errors import SimError
from hil.private_dir import private_dir
from hil.rack import Board, Capabilities, Flasher, Rack, SdSlot
from hil.sim.config import DEFAULT_KIND

#: Card slot and size of every run-started virtual board (ESP32-style machine.SDCard(slot=2)).
SD_SLOT = 2
SD_SIZE = "16M"


@dataclass(frozen=True)
class KindEntry:
    """What a rack entry says about a virtual board of one kind."""

    platform: str
    sd_card: bool = False  # run-started boards get a card in SD_SLOT
    flashable: bool = False  # its firmware slot takes images through the control socket


#: Rack facts per board kind; a kind not listed is a board of platform ``kind`` with neither.
KIND_ENTRIES = {"unix": KindEntry(platform="unix", sd_card=True, flashable=True)}


def kind_entry(kind: str) -> KindEntry:
    return KIND_ENTRIES.get(kind) or KindEntry(platform=kind)


def sim_rack(
    state_dir: Path,
    count: int,
    lock_dir: Path,
    firmware: str | None = None,
    kind: str = DEFAULT_KIND,
) -> Rack:
    """The rack of the run's virtual boards, known before any of them runs; ``firmware`` pins
    them to a firmware id of the manifest (they start on the interpreter's own version)."""
    boards = tuple(board_entry(state_dir / f"vb{i}", firmware, kind) for i in range(count))
    return Rack(boards=boards, lock_dir=str(lock_dir))


def ensure_started(
    state_dir: Path,
    count: int,
    owner_pid: int,
    kind: str = DEFAULT_KIND,
    baud: int | None = None,
) -> None:
    """Start the run's virtual boards unless another process of the run already has; they
    stop by themselves if the run's main process (``owner_pid``) dies without stopping them."""
    private_dir(state_dir.parent, what="run directory")  # the lock below lives there
    state_dir = private_dir(state_dir)
    sd = SD_SIZE if kind_entry(kind).sd_card else None
    try:
        with FileLock(str(state_dir.parent / "sim.lock"), timeout=120):
            if hil.sim.running_pid(state_dir) is None:  # not yet, or its server died
                hil.sim.start(
                    state_dir,
                    count,
                    kind=kind,
                    sd=sd,
                    sd_slot=SD_SLOT,
                    owner_pid=owner_pid,
                    baud=baud,
                )
    except Timeout as e:
        raise SimError("another process of this run kept the virtual boards' start lock") from e


def board_entry(directory: Path, firmware: str | None = None, kind: str = DEFAULT_KIND) -> Board:
    """A rack entry for a running virtual board: reset, power and flashing through its socket."""
    facts = kind_entry(kind)
    sd = SdSlot(driver="machine.SDCard", slot=SD_SLOT) if facts.sd_card else None
    return Board(
        # another kind's boards get other ids: a report that holds runs of both tells them apart
        id=directory.name if kind == DEFAULT_KIND else f"{kind}-{directory.name}",
        port=f"sim:{directory}",
        platform=facts.platform,
        tags=("virtual", kind),
        capabilities=Capabilities(sd=sd),
        reset="sim",
        power="sim",
        flasher=Flasher(name="sim") if facts.flashable else None,
        firmware=firmware,
    )


def stop(state_dir: Path) -> None:
    hil.sim.stop(state_dir)
