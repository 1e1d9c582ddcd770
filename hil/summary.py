"""The end of a pytest run, per board: what ran, what was skipped and why, whose fault failures
were. Printed without ``-rs`` because on a bench the first question is "did my board run the
suite, and if not, what does it lack?".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from hil.errors import escape_text

#: The outcome categories of pytest's terminal reporter that we count.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
NO_BOARD = "(no board)"


def board_summary(stats: Mapping[str, Iterable[Any]], capabilities: Mapping[str, str]) -> list[str]:
    """The lines of the summary; empty when no test used a board."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    skips: dict[str, Counter[str]] = defaultdict(Counter)
    faults: Counter[str] = Counter()
    quarantined: list[str] = []
    for outcome in OUTCOMES:
        for report in stats.get(outcome, ()):
            properties = dict(getattr(report, "user_properties", ()) or ())
            board = properties.get("hil_board")
            if board is None and not _skipped_for_want_of_a_board(report, outcome):
                continue
            board = board or NO_BOARD
            counts[board][outcome] += 1
            if outcome == "skipped":
                skips[board][_skip_reason(report)] += 1
            if outcome in ("failed", "error"):
                faults[properties.get("hil_fault", "product")] += 1
    for reports in stats.values():  # a passed teardown is filed under no outcome
        for report in reports:
            properties = dict(getattr(report, "user_properties", ()) or ())
            if "hil_quarantined" in properties:
                line = f"quarantined {properties.get('hil_board')}: {properties['hil_quarantined']}"
                if line not in quarantined:
                    quarantined.append(escape_text(line))
    if not counts:
        return []
    lines = []
    for board in sorted(counts):
        done = ", ".join(f"{n} {outcome}" for outcome, n in counts[board].items() if n)
        extra = f" [{capabilities[board]}]" if capabilities.get(board) else ""
        lines.append(f"{board}{extra}: {done}")
        for reason, n in skips[board].most_common():
            lines.append(f"    {n} skipped: {reason}")
    failures = sum(faults.values())
    if failures:
        parts = ", ".join(f"{n} {fault}" for fault, n in sorted(faults.items()))
        lines.append(f"failures by fault: {failures} ({parts})")
    lines.extend(quarantined)
    return lines


def _skipped_for_want_of_a_board(report: Any, outcome: str) -> bool:
    return outcome == "skipped" and "no board matches" in _skip_reason(report)


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return escape_text(reason.removeprefix("Skipped: "))
