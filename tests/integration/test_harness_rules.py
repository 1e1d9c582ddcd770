"""The rules of a session (``hil.harness``), on real virtual boards and real leases.

A held board is kept while tests match it and traded when one does not; a board that stops
answering is reset hard, then power-cycled, then quarantined with every step in the reason;
``prepare`` resets as asked; the firmware check runs once per board and session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.board import Board as BoardLink
from hil.errors import BoardQuarantined, FlashError, HilError, InfrastructureError
from hil.harness import PREPARE_FAILURES, Harness, Settings
from hil.rack import Board, Rack, Selector
from hil.sim import SimBoard

#: A power command that fails: the lab's hub is unreachable.
BROKEN_HUB = [sys.executable, "-c", "raise SystemExit('hub 1-1: not found')"]


def rack_of(boards: list[SimBoard], **fields: Any) -> Rack:
    """Virtual boards as a rack: board i has tag ``t<i>``; ``fields`` apply to every entry."""
    entries = [
        Board(
            id=vb.name,
            port=f"sim:{vb.directory}",
            platform="unix",
            tags=(f"t{index}",),
            **{"reset": "sim", "power": "sim", **fields},
        )
        for index, vb in enumerate(boards)
    ]
    return Rack(boards=tuple(entries))


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Factory of harnesses on a private lock directory; each is closed after the test."""
    made: list[Harness] = []

    def make(
        rack: Rack, connect_timeout: float = 20.0, reset_timeout: float = 10.0, **options: Any
    ) -> Harness:
        harness = Harness(
            rack,
            Settings(
                lease_timeout=5.0, connect_timeout=connect_timeout, reset_timeout=reset_timeout
            ),
            lock_dir=tmp_path / "locks",
            run_id="run-1",
            worker=None,
            **options,
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def two_boards(start_virtual_boards: Callable[..., list[SimBoard]]) -> list[SimBoard]:
    return start_virtual_boards(2)


@pytest.fixture
def one_board(start_virtual_boards: Callable[..., list[SimBoard]]) -> SimBoard:
    return start_virtual_boards(1)[0]


def notes(harness: Harness) -> str:
    return harness.transcript.render(0)


def mark_session(link: BoardLink) -> None:
    link.exec("hil_marker = 1234")


def has_marker(link: BoardLink) -> bool:
    return link.eval("'hil_marker' in globals()")


# --- leases -------------------------------------------------------------------------------------


def test_a_held_board_is_kept_while_tests_match_and_traded_when_one_does_not(
    two_boards: list[SimBoard], make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of(two_boards))

    entry, link = harness.board_for(Selector(tags=frozenset({"t0"})))
    assert entry.id == "vb0"
    mark_session(link)
    # a test without a marker, and one that names the held board's platform, keep it
    for selector in (Selector(), Selector(platform="unix"), Selector(id="vb0")):
        again, same_link = harness.board_for(selector)
        assert again is entry and same_link is link
    assert has_marker(link)  # the same connection, the same session on the board
    assert not harness.manager.state("vb0").free

    other, other_link = harness.board_for(Selector(tags=frozenset({"t1"})))

    assert other.id == "vb1"
    assert other_link is not link and not link.transport.is_open
    assert harness.manager.state("vb0").free  # the lease went back for another worker
    assert not harness.manager.state("vb1").free
    assert other_link.eval("6 * 7") == 42
    assert "lease: vb0" in notes(harness) and "lease: vb1" in notes(harness)


def test_release_gives_the_board_back(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())

    harness.release()

    assert harness.entry is None and harness.link is None
    assert not link.transport.is_open
    assert harness.manager.state("vb0").free


def test_a_board_that_cannot_be_connected_is_quarantined(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]), connect_timeout=1.0)
    one_board.control.unplug()  # its port is gone: nothing to open

    with pytest.raises(BoardQuarantined) as info:
        harness.board_for(Selector())

    assert info.value.what.startswith("cannot connect: ")
    assert info.value.what.endswith("(quarantined for this run)")
    record = harness.quarantine.get("vb0")
    assert record is not None and record.reason.startswith("cannot connect: ")
    assert harness.lease is None
    with pytest.raises(BoardQuarantined):  # and it stays out for the rest of the run
        harness.board_for(Selector())


# --- health and recovery ------------------------------------------------------------------------


def test_a_healthy_board_is_left_alone(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())
    mark_session(link)

    assert harness.check_health() is None

    assert has_marker(link)  # no reset of any kind
    assert "recovery:" not in notes(harness)


def test_a_hung_board_is_recovered_by_hard_reset(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())
    before = one_board.control.status()
    one_board.control.fault("hang")

    assert harness.check_health() is None

    assert link.eval("6 * 7") == 42
    assert "recovery: hard reset" in notes(harness)
    assert "recovery: power cycle" not in notes(harness)
    after = one_board.control.status()
    assert after["hard_resets"] == before["hard_resets"] + 1
    assert "vb0" not in harness.quarantine
    assert harness.entry is not None and harness.entry.id == "vb0"  # still held


def test_when_hard_reset_fails_the_power_cycle_recovers(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    # a soft reset cannot wake a hung board; the power switch can
    harness = make_harness(rack_of([one_board], reset="soft", power="sim"))
    _, link = harness.board_for(Selector())
    one_board.control.fault("hang")

    assert harness.check_health() is None

    assert link.eval("6 * 7") == 42
    text = notes(harness)
    assert text.index("recovery: hard reset") < text.index("recovery: power cycle")
    assert "vb0" not in harness.quarantine


def test_a_board_that_cannot_be_recovered_is_quarantined_with_each_step(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board], reset="soft", power=BROKEN_HUB))
    _, link = harness.board_for(Selector())
    one_board.control.fault("hang")

    reason = harness.check_health()

    assert reason is not None
    assert reason.startswith("board stopped answering; hard reset: ")
    hard, power = reason.split("; ")[1:3]
    assert hard.startswith("hard reset: ") and "raw REPL" in hard  # the soft reset failed
    assert power.startswith("power cycle: power command ")
    assert "hub 1-1: not found" in power
    assert "vb0" in harness.quarantine
    assert harness.quarantine.get("vb0").reason == reason
    assert harness.lease is None and harness.link is None
    assert not link.transport.is_open
    with pytest.raises(BoardQuarantined):
        harness.board_for(Selector())


def test_no_power_driver_is_a_step_that_was_not_possible(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    rack = Rack(
        boards=(Board(id="vb0", port=f"sim:{one_board.directory}", platform="unix", reset="soft"),)
    )
    harness = make_harness(rack)
    harness.board_for(Selector())
    one_board.control.fault("hang")

    reason = harness.check_health()

    assert reason is not None and reason.endswith("; power cycle: not possible")
    assert "vb0" in harness.quarantine


# --- prepare ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "kept"), [("none", True), ("soft", False), ("hard", False)])
def test_prepare_resets_as_asked(
    one_board: SimBoard, make_harness: Callable[..., Harness], mode: str, kept: bool
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())
    mark_session(link)
    before = one_board.control.status()

    harness.prepare(mode)

    assert has_marker(link) is kept
    after = one_board.control.status()
    assert after["hard_resets"] - before["hard_resets"] == (mode == "hard")
    assert after["soft_resets"] - before["soft_resets"] == (mode == "soft")


def test_prepare_with_an_unknown_reset_mode_fails_and_leaves_the_board(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())
    mark_session(link)

    with pytest.raises(HilError, match=r"unknown reset mode 'warm' \(soft, hard, none\)"):
        harness.prepare("warm")

    assert has_marker(link)  # nothing was reset
    assert "vb0" not in harness.quarantine
    assert harness.link is link


def test_an_unknown_reset_mode_is_a_usage_error(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    harness.board_for(Selector())

    with pytest.raises(HilError) as info:
        harness.prepare("warm")

    assert info.value.fault == "usage"


def test_a_board_that_fails_its_reset_but_recovers_errors_the_test_only(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]))
    _, link = harness.board_for(Selector())
    one_board.control.fault("hang")

    with pytest.raises(InfrastructureError) as info:
        harness.prepare("soft")

    assert not isinstance(info.value, BoardQuarantined)
    assert "recovery: hard reset" in notes(harness)
    assert link.eval("6 * 7") == 42  # recovered: the next test can have it
    assert "vb0" not in harness.quarantine


def test_a_board_that_fails_its_reset_and_stays_silent_is_quarantined(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board], reset="soft", power=BROKEN_HUB))
    harness.board_for(Selector())
    one_board.control.fault("hang")

    with pytest.raises(BoardQuarantined) as info:
        harness.prepare("soft")

    assert info.value.where == "vb0"
    assert info.value.what.startswith("board stopped answering; hard reset: ")
    assert "vb0" in harness.quarantine


def test_a_board_that_answers_but_never_gets_ready_is_taken_out_after_a_few_tests(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]), reset_timeout=0.5)
    harness.board_for(Selector())
    one_board.control.fault("slow_boot", seconds=2.0)  # boots, but later than a test may wait

    for _ in range(PREPARE_FAILURES - 1):
        with pytest.raises(InfrastructureError) as info:
            harness.prepare("soft")
        assert not isinstance(info.value, BoardQuarantined)  # it answers: maybe a one-off
    with pytest.raises(BoardQuarantined) as info:
        harness.prepare("soft")

    assert f"{PREPARE_FAILURES} tests in a row could not start on it" in info.value.what
    assert "vb0" in harness.quarantine


def test_a_good_start_clears_the_count_of_failed_ones(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(rack_of([one_board]), reset_timeout=0.5)
    harness.board_for(Selector())
    for _ in range(PREPARE_FAILURES + 1):
        one_board.control.fault("slow_boot", seconds=2.0)
        with pytest.raises(InfrastructureError) as info:
            harness.prepare("soft")
        assert not isinstance(info.value, BoardQuarantined)
        one_board.control.clear_faults()
        harness.prepare("soft")  # a good start in between: failures are not "in a row"

    assert "vb0" not in harness.quarantine


# --- firmware check -----------------------------------------------------------------------------


def test_the_firmware_check_runs_once_per_board_and_session(
    two_boards: list[SimBoard], make_harness: Callable[..., Harness]
) -> None:
    checked: list[tuple[str, int]] = []
    started: list[bool] = []

    def check(entry: Board, open_board: Callable[[], BoardLink]) -> None:
        with open_board() as link:  # a fresh connection of its own, as a flasher needs
            checked.append((entry.id, link.eval("6 * 7")))

    harness = make_harness(
        rack_of(two_boards, firmware="virtual-test-1"),
        firmware_check=check,
        starter=lambda: started.append(True),
    )

    for selector in ("t0", "t0", "t1", "t0", "t1"):
        harness.board_for(Selector(tags=frozenset({selector})))

    assert checked == [("vb0", 42), ("vb1", 42)]
    assert started == [True]  # the virtual boards are started once, on first need


def test_no_pinned_firmware_means_no_check(
    one_board: SimBoard, make_harness: Callable[..., Harness]
) -> None:
    checked: list[str] = []
    harness = make_harness(
        rack_of([one_board]), firmware_check=lambda entry, _open: checked.append(entry.id)
    )

    harness.board_for(Selector())

    assert checked == []


def test_a_board_that_fails_its_firmware_check_is_quarantined_and_another_leased(
    two_boards: list[SimBoard], make_harness: Callable[..., Harness]
) -> None:
    def check(entry: Board, open_board: Callable[[], BoardLink]) -> None:
        if entry.id == "vb0":
            raise FlashError("image refused: sha256 mismatch", where=entry.id)

    harness = make_harness(rack_of(two_boards, firmware="virtual-test-1"), firmware_check=check)

    entry, link = harness.board_for(Selector())

    assert entry.id == "vb1"
    assert link.eval("6 * 7") == 42
    record = harness.quarantine.get("vb0")
    assert record is not None and "firmware: " in record.reason
    assert "image refused: sha256 mismatch" in record.reason
    assert harness.manager.state("vb0").quarantined is not None
