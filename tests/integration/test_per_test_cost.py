"""What the framework itself asks a board between two tests, counted on the wire.

At 115200 baud each round trip costs tens of milliseconds, so the framework's own exchanges per
test are what a rack pays on every test. Under a class or module reset scope the board is left
alone between tests: the free heap measured after one test is the next one's start, and a board
that has just answered that measurement needs no separate health check. Under the default (a
reset per test) the heap is measured again after the reset. Run by pytest in a subprocess, as a
user runs it, on a plugin-started virtual board.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from user_project import attachment, run_pytest

pytest.importorskip("allure_pytest")

TRIVIAL = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_trivial(board, n):
    assert board.eval("1 + 1") == 2
"""


def wire_of_each_test(tmp_path: Path, *args: str) -> dict[str, str]:
    (tmp_path / "test_trivial.py").write_text(textwrap.dedent(TRIVIAL))
    done = run_pytest(tmp_path, "--hil-sim=1", "--alluredir", "results", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wires = {}
    for path in (tmp_path / "results").glob("*-result.json"):
        result = json.loads(path.read_text())
        wires[result["name"]] = attachment(tmp_path, result, "wire")
    assert len(wires) == 4 and all(wires.values()), wires
    return wires


def actions(wire: str, title: str) -> int:
    return wire.count(f"{{{{ {title}")


def test_module_scope_asks_the_heap_once_per_test_and_no_health_check(tmp_path: Path) -> None:
    wires = wire_of_each_test(tmp_path, "--hil-reset-scope=module")
    middle = [wire for name, wire in wires.items() if not name.endswith("-0]")]
    for wire in middle:
        assert actions(wire, "measure free heap") == 1, wire  # after the test only
        assert actions(wire, "health check") == 0, wire
        assert "soft reset" not in wire
    first = next(wire for name, wire in wires.items() if name.endswith("-0]"))
    assert actions(first, "measure free heap") == 2, first  # the reset changed the board


def test_a_reset_per_test_measures_the_heap_again_after_it(tmp_path: Path) -> None:
    wires = wire_of_each_test(tmp_path, "--hil-reset-scope=test")
    for wire in wires.values():
        assert actions(wire, "measure free heap") == 2, wire
        assert actions(wire, "health check") == 0, wire
