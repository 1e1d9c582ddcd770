"""Benchmark: does a rack of equivalent boards finish sooner, and what does a reset cost?

Not a test (no timed test asserts a speed): run it by hand or in a perf job and read the table.

    python bench/bench_rack.py [--boards 1,2,4,8] [--tests 96] [--overhead-tests 30]

1. Spreading (``--hil-spread group``): a fixed workload (``--tests`` tests, each putting 4 kB
   on the board and reading its checksum: time spent on the board's 115200-baud UART, as on a real
   rack) runs with ``pytest -n N`` on N virtual boards of one group, each throttled to 115200
   baud. Printed per N: the wall time and ``wall(N) / (wall(1) / N)``, 1.0 being a perfect
   spread. Target: at most 1.25 for N up to 4 on a 2-core machine.
2. Reset scope: per-test overhead, ``(wall(30 trivial tests) - wall(1)) / 29``, for each reset
   scope, on one virtual board unthrottled and at 115200 baud. Target: per-module scope under
   10 ms per extra test unthrottled.

Each measurement is a whole ``pytest`` run as a user starts it (virtual boards started by the
plugin), so it includes what a user waits for; the ratios cancel the fixed part out.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORKLOAD = """
import os
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_work(board, tmp_path, n):
    data = os.urandom(4096)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    board.put(source, "blob.bin")
    assert board.eval("len(open('blob.bin', 'rb').read())") == len(data)
"""

TRIVIAL = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
def test_trivial(board, n):
    assert board.eval("1 + 1") == 2
"""


def pytest_wall(directory: Path, *args: str) -> float:
    """Seconds one ``pytest`` run takes; the run must pass."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pytest failed ({' '.join(args)}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def suite(directory: Path, template: str, tests: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "test_bench.py").write_text(textwrap.dedent(template.format(tests=tests)))
    return directory


def spreading(root: Path, counts: list[int], tests: int) -> None:
    work = suite(root / "spread", WORKLOAD, tests)
    print(f"\nSpreading {tests} tests (4 kB put each) over N boards of one group at 115200 baud")
    print(f"{'N':>3} {'wall s':>8} {'wall(N)/(wall(1)/N)':>20}")
    first = None
    for n in counts:
        args = [f"--hil-sim={n}", "--hil-sim-baud=115200", "--hil-spread=group"]
        if n > 1:
            args += ["-n", str(n)]
        wall = pytest_wall(work, *args)
        first = first if first is not None else wall * counts[0]  # wall(1), scaled if N0 > 1
        print(f"{n:>3} {wall:>8.2f} {wall / (first / n):>20.2f}")


def reset_scopes(root: Path, extra: int, baud: int | None) -> None:
    one = suite(root / f"one-{baud}", TRIVIAL, 1)
    many = suite(root / f"many-{baud}", TRIVIAL, extra + 1)
    link = f"at {baud} baud" if baud else "unthrottled"
    print(f"\nPer-test overhead ({extra + 1} trivial tests against 1, one board, {link})")
    print(f"{'reset scope':>12} {'ms per extra test':>18}")
    throttle = [f"--hil-sim-baud={baud}"] if baud else []
    for scope in ("test", "class", "module"):
        args = ["--hil-sim=1", f"--hil-reset-scope={scope}", *throttle]
        single = min(pytest_wall(one, *args) for _ in range(2))
        several = min(pytest_wall(many, *args) for _ in range(2))
        print(f"{scope:>12} {(several - single) / extra * 1000:>18.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default="1,2,4,8", help="board counts to spread over")
    parser.add_argument("--tests", type=int, default=96, help="tests in the spread workload")
    parser.add_argument("--overhead-tests", type=int, default=30, help="trivial tests")
    args = parser.parse_args()
    counts = [int(n) for n in args.boards.split(",")]
    with tempfile.TemporaryDirectory(prefix="mpy-hil-bench-") as tmp:
        root = Path(tmp)
        spreading(root, counts, args.tests)
        for baud in (None, 115200):
            reset_scopes(root, args.overhead_tests - 1, baud)
    return 0


if __name__ == "__main__":
    sys.exit(main())
