"""The end of a pytest run, per board: what ran, what was skipped and why, whose fault failures
were, what the board spent, its firmware and capabilities. Printed without ``-rs`` because on a
bench the first question is "did my board run the suite, and if not, what does it lack?".

The table is made to fit the terminal: the board ids are never cut (their column is as wide as
the longest), firmware and capabilities go on wrapped lines under the table.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.errors import escape_text

#: The outcome categories of pytest's terminal reporter that we count.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
NO_BOARD = "(no board)"
#: Whose fault a failure was (``hil_fault`` of the report), in the order they are listed.
FAULTS = ("infrastructure", "product", "assertion", "usage", "error")


@dataclass
class BoardRow:
    """What one board did in the run."""

    board: str
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    heap: list[int] = field(default_factory=list)
    timed: int = 0

    @property
    def failures(self) -> int:
        return self.outcomes["failed"] + self.outcomes["error"]

    @property
    def passed(self) -> int:
        return self.outcomes["passed"] + self.outcomes["xfailed"] + self.outcomes["xpassed"]

    @property
    def infrastructure(self) -> int:
        return self.faults["infrastructure"]

    @property
    def not_infrastructure(self) -> int:
        """Failures that are not the rig's: with ``infrastructure`` they make ``failures``, so
        the columns of a row add up to its results (a test whose call and teardown both fail
        counts twice, as pytest counts it)."""
        return self.failures - self.infrastructure

    def heap_text(self, *, worst: bool = True) -> str:
        """Mean change of free heap per test, and the worst, e.g. ``-1.2 kB (worst -4.0 kB)``."""
        if not self.heap:
            return "-"
        mean = _kb(sum(self.heap) / len(self.heap))
        return f"{mean} (worst {_kb(min(self.heap))})" if worst else mean


def _kb(n: float) -> str:
    return f"{n / 1000:+.1f} kB" if abs(n) >= 1000 else f"{n:+.0f} B"


def collect(stats: Mapping[str, Iterable[Any]]) -> dict[str, BoardRow]:
    """Per board: counts by outcome and fault, skip reasons, board time and heap changes."""
    rows: dict[str, BoardRow] = {}
    for outcome in OUTCOMES:
        for report in stats.get(outcome, ()):
            properties = dict(getattr(report, "user_properties", ()) or ())
            board = properties.get("hil_board")
            if board is None and not _skipped_for_want_of_a_board(report, outcome):
                continue
            row = rows.setdefault(board or NO_BOARD, BoardRow(board or NO_BOARD))
            row.outcomes[outcome] += 1
            if outcome == "skipped":
                row.skips[_skip_reason(report)] += 1
            if outcome in ("failed", "error"):
                row.faults[properties.get("hil_fault") or "error"] += 1
    seen: set[str] = set()
    for reports in stats.values():  # a passed teardown is filed under no outcome
        for report in reports:
            properties = dict(getattr(report, "user_properties", ()) or ())
            board, key = properties.get("hil_board"), getattr(report, "nodeid", id(report))
            if board is None or "hil_board_seconds" not in properties or key in seen:
                continue
            seen.add(key)
            row = rows.setdefault(board, BoardRow(board))
            row.seconds += float(properties["hil_board_seconds"])
            row.timed += 1
            if properties.get("hil_heap_change") is not None:
                row.heap.append(int(properties["hil_heap_change"]))
    return rows


def board_summary(
    stats: Mapping[str, Iterable[Any]],
    capabilities: Mapping[str, str],
    firmware: Mapping[str, str | None] | None = None,
    *,
    width: int = 80,
) -> list[str]:
    """The lines of the summary; empty when no test used a board."""
    rows = collect(stats)
    if not rows:
        return []
    lines = _fitted(rows, width)
    for board in sorted(rows):
        row = rows[board]
        details = []
        if firmware and firmware.get(board):
            details.append(f"firmware {firmware[board]}")
        if capabilities.get(board):
            details.append(f"capabilities: {capabilities[board]}")
        if details:
            lines.extend(_wrapped(f"{board}: " + "; ".join(details), width))
        for reason, n in row.skips.most_common():
            lines.extend(_wrapped(f"{board}: {n} skipped: {reason}", width))
    failures = sum(row.failures for row in rows.values())
    if failures:
        faults: Counter[str] = Counter()
        for row in rows.values():
            faults.update(row.faults)
        order = [f for f in FAULTS if faults[f]] + sorted(set(faults) - set(FAULTS))
        parts = " + ".join(f"{faults[f]} {f}" for f in order)
        lines.append(f"failures by fault: {failures} = {parts}")
    lines.extend(_quarantined(stats))
    return lines


def _table(rows: Mapping[str, BoardRow], *, worst: bool) -> list[list[str]]:
    # disjoint columns: a row's passed + failed + infra + skipped are its results
    header = ["board", "passed", "failed", "infra", "skipped", "board time", "free heap/test"]
    table = [header]
    for board in sorted(rows):
        row = rows[board]
        table.append(
            [
                board,
                str(row.passed),
                str(row.not_infrastructure),
                str(row.infrastructure),
                str(row.outcomes["skipped"]),
                f"{row.seconds:.2f} s" if row.timed else "-",
                row.heap_text(worst=worst),
            ]
        )
    return table


def _fitted(rows: Mapping[str, BoardRow], width: int) -> list[str]:
    """The table as wide as the terminal allows: whole; else without the worst heap change;
    else each board id on a line of its own (whole), its numbers under it."""
    for worst in (True, False):
        lines = _aligned(_table(rows, worst=worst))
        if max(len(line) for line in lines) <= width:
            return lines
    table = _table(rows, worst=True)  # the ids' own lines leave room for it again
    numbers = _aligned([["", *line[1:]] for line in table])
    lines = [numbers[0]]
    for line, row in zip(table[1:], numbers[1:], strict=True):
        lines += [line[0], row]
    return lines


def _aligned(table: list[list[str]]) -> list[str]:
    """Columns as wide as their widest cell: the first left-aligned, the numbers right."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def _wrapped(text: str, width: int) -> list[str]:
    """A long line wrapped to the terminal, continued under itself, never cutting a word."""
    return textwrap.wrap(
        text,
        width=max(width, 40),
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    ) or [text]


def _quarantined(stats: Mapping[str, Iterable[Any]]) -> list[str]:
    lines: list[str] = []
    for reports in stats.values():
        for report in reports:
            properties = dict(getattr(report, "user_properties", ()) or ())
            if "hil_quarantined" in properties:
                line = escape_text(
                    f"quarantined {properties.get('hil_board')}: {properties['hil_quarantined']}"
                )
                if line not in lines:
                    lines.append(line)
    return lines


def overview(
    stats: Mapping[str, Iterable[Any]],
    firmware: Mapping[str, str | None],
    capabilities: Mapping[str, str],
) -> dict[str, str]:
    """Per board, one line for the report's environment: ``12 passed, 1 failed,
    0 infrastructure, 0 skipped; board time 3.2 s; free heap/test -1.2 kB (worst -4.0 kB)``
    (failed: not the rig's fault; the four add up to the board's results)."""
    out = {}
    for board, row in sorted(collect(stats).items()):
        if board == NO_BOARD:
            continue
        text = (
            f"{row.passed} passed, {row.not_infrastructure} failed, "
            f"{row.infrastructure} infrastructure, {row.outcomes['skipped']} skipped"
        )
        if row.timed:
            text += f"; board time {row.seconds:.2f} s; free heap/test {row.heap_text()}"
        out[board] = text
    return out


def _skipped_for_want_of_a_board(report: Any, outcome: str) -> bool:
    return outcome == "skipped" and "no board matches" in _skip_reason(report)


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return escape_text(reason.removeprefix("Skipped: "))
