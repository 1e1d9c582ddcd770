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
    lines = board_summary(stats, {"vb0": "gc, hashlib, sd"}, {"vb0": "v1.24.1"})

    assert lines == [
        "board       passed  failed  infra  skipped  board time  free heap/test",
        "(no board)       0       0      0        1           -               -",
        "mb               1       0      0        3           -               -",
        "vb0              2       0      0        0           -               -",
        "(no board): 1 skipped: no board matches (platform='esp32'): vb0: platform unix",
        "mb: 2 skipped: mb: firmware lacks sys.modules",
        "mb: 1 skipped: mb: lacks capability sd",
        "vb0: firmware v1.24.1; capabilities: gc, hashlib, sd",
    ]


def test_failures_by_fault_add_up_to_the_failures() -> None:
    stats = {
        "failed": [
            Report("vb0", fault="assertion"),
            Report("vb0", fault="product"),
            Report("vb1", fault="infrastructure"),
        ],
        "error": [Report("vb1", fault="infrastructure"), Report("vb1")],
    }
    lines = board_summary(stats, {})

    # passed, failed (not the rig's fault), infra, skipped: disjoint, adding up to the tests
    assert lines[1].split() == ["vb0", "0", "2", "0", "0", "-", "-"]
    assert lines[2].split() == ["vb1", "0", "1", "2", "0", "-", "-"]
    assert (
        lines[-1] == "failures by fault: 5 = 2 infrastructure + 1 product + 1 assertion + 1 error"
    )


def test_board_time_and_free_heap_per_test_come_from_teardown_reports() -> None:
    def teardown(nodeid: str, seconds: float, heap: int | None) -> Report:
        props: list[tuple[str, object]] = [("hil_board_seconds", seconds)]
        if heap is not None:
            props.append(("hil_heap_change", heap))
        report = Report("vb0", user_properties=props)  # type: ignore[arg-type]
        report.nodeid = nodeid  # type: ignore[attr-defined]
        return report

    stats = {
        "passed": [Report("vb0"), Report("vb0")],
        "": [teardown("t1", 0.5, -1000), teardown("t2", 0.25, -3000), teardown("t2", 9, -9)],
    }
    lines = board_summary(stats, {})
    assert lines[1].split() == [
        "vb0",
        "2",
        "0",
        "0",
        "0",
        "0.75",
        "s",
        "-2.0",
        "kB",
        "(worst",
        "-3.0",
        "kB)",
    ]


def test_long_capability_lists_wrap_and_ids_are_never_cut() -> None:
    board = "usb-serial-0001A2B3C4D5E6F7-esp32-rack-slot-17"
    caps = ", ".join(f"capability-{i}" for i in range(30))
    lines = board_summary({"passed": [Report(board)]}, {board: caps}, width=60)
    assert all(len(line) <= 60 or " " not in line.strip() for line in lines)
    assert lines[1] == board  # too long for a row with its numbers: a line of its own
    assert lines[3].startswith(f"{board}:")  # whole, even where it overflows
    assert " ".join(line.strip() for line in lines[3:]) == f"{board}: capabilities: {caps}"


def test_board_text_in_a_skip_reason_is_escaped() -> None:
    lines = board_summary({"skipped": [skipped("vb0", "\x1b[2Jboard says")]}, {})
    assert lines[2] == "vb0: 1 skipped: \\x1b[2Jboard says"


def test_a_run_that_used_no_board_prints_nothing() -> None:
    assert board_summary({"passed": [Report(None)]}, {}) == []


def test_a_board_quarantined_after_a_passed_test_is_named() -> None:
    teardown = Report("vb1", user_properties=[("hil_quarantined", "board stopped answering")])
    lines = board_summary({"passed": [Report("vb1")], "": [teardown]}, {})
    assert lines[-1] == "quarantined vb1: board stopped answering"


def test_a_board_id_too_long_for_the_terminal_gets_a_line_of_its_own() -> None:
    long_id = "esp32-lab2-rack3-slot07-with-sdcard-and-wifi"
    stats = {"passed": [Report(long_id), Report("vb0")]}
    lines = board_summary(stats, {}, width=60)
    assert lines[1] == long_id  # whole, never cut
    assert lines[2].split() == ["1", "0", "0", "0", "-", "-"]
    assert lines[3] == "vb0"
    assert all(len(line) <= 60 for line in lines), lines


def test_a_table_just_too_wide_drops_the_worst_heap_change_first() -> None:
    def timed(board: str) -> Report:
        props = [("hil_board_seconds", 2.98), ("hil_heap_change", -2200)]
        return Report(board, user_properties=props)  # type: ignore[arg-type]

    stats = {"passed": [Report("microbit-vb0")], "x": [timed("microbit-vb0")]}
    wide = board_summary(stats, {}, width=100)
    assert wide[1].endswith("-2.2 kB (worst -2.2 kB)")
    narrow = board_summary(stats, {}, width=72)
    assert narrow[1].split() == ["microbit-vb0", "1", "0", "0", "0", "2.98", "s", "-2.2", "kB"]
