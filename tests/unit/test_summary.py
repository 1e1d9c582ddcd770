"""The per-board summary at the end of a run: counts that add up, skip reasons, faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from hil.summary import board_summary


@dataclass
class Report:
    """Stands in for pytest's TestReport: what the summary reads of one."""

    board: str | None
    longrepr: object = None
    fault: str | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.board:
            self.user_properties.append(("hil_board", self.board))
        if self.fault:
            self.user_properties.append(("hil_fault", self.fault))


def skipped(board: str | None, reason: str) -> Report:
    return Report(board, ("tests/hil/x.py", 3, f"Skipped: {reason}"))


def test_each_board_gets_its_counts_and_skip_reasons() -> None:
    stats = {
        "passed": [Report("vb0"), Report("vb0"), Report("mb")],
        "skipped": [
            skipped("mb", "mb: firmware lacks sys.modules"),
            skipped("mb", "mb: firmware lacks sys.modules"),
            skipped("mb", "mb: lacks capability sd"),
            skipped(None, "no board matches (platform='esp32'): vb0: platform unix"),
            skipped(None, "a skip of a test that uses no board"),
        ],
    }
    lines = board_summary(stats, {"vb0": "gc, hashlib, sd"})

    assert lines == [
        "(no board): 1 skipped",
        "    1 skipped: no board matches (platform='esp32'): vb0: platform unix",
        "mb: 1 passed, 3 skipped",
        "    2 skipped: mb: firmware lacks sys.modules",
        "    1 skipped: mb: lacks capability sd",
        "vb0 [gc, hashlib, sd]: 2 passed",
    ]


def test_failures_by_fault_add_up_to_the_failures() -> None:
    stats = {
        "failed": [
            Report("vb0"),
            Report("vb0", fault="product"),
            Report("vb1", fault="infrastructure"),
        ],
        "error": [Report("vb1", fault="infrastructure")],
    }
    lines = board_summary(stats, {})

    assert "failures by fault: 4 (2 infrastructure, 2 product)" in lines


def test_board_text_in_a_skip_reason_is_escaped() -> None:
    lines = board_summary({"skipped": [skipped("vb0", "\x1b[2Jboard says")]}, {})
    assert lines[1] == "    1 skipped: \\x1b[2Jboard says"


def test_a_run_that_used_no_board_prints_nothing() -> None:
    assert board_summary({"passed": [Report(None)]}, {}) == []


def test_a_board_quarantined_after_a_passed_test_is_named() -> None:
    teardown = Report("vb1", user_properties=[("hil_quarantined", "board stopped answering")])
    lines = board_summary({"passed": [Report("vb1")], "": [teardown]}, {})
    assert lines[-1] == "quarantined vb1: board stopped answering"
