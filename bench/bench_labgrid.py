"""Benchmark: one board through labgrid (its place's RFC 2217 port, ser2net on the exporter)
against the same board on its local port.

Not a test (no timed test asserts a speed): run it by hand or in a perf job and read the table.

    python bench/bench_labgrid.py [--rounds N] [--put-size BYTES]

A lab on this machine (:mod:`hil.labgrid.testlab`: a coordinator, one exporter, one virtual board
throttled to 115200 baud, all on loopback) is started, the board's place is leased, and then,
alternately through labgrid and locally: the exec round trip of ``pass`` and a put of random
bytes (verified by sha256 on the board). A ratio is the labgrid time divided by the local one;
the target is at most 1.5x for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from hil.board import Board

BAUD = 115200
TARGET = 1.5


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds per call (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(opener: Callable[[], str], rounds: int, data: bytes, name: str) -> tuple[float, float]:
    """Exec round trip (median) and put time of ``data``, on a board opened by ``opener``."""
    with Board.open(opener, name="bench") as board:
        exec_rt = timed(lambda: board.exec("pass"), rounds)
        start = time.perf_counter()
        board.put(data, f"/bench_{name}.bin")  # includes the sha256 check on the board
        return exec_rt, time.perf_counter() - start


def main() -> int:
    from hil.labgrid import testlab

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="exec round trips per link")
    parser.add_argument("--put-size", type=int, default=100_000, help="bytes to put")
    args = parser.parse_args()
    why = testlab.missing()
    if why:
        print(f"skipped: {why}")
        return 0
    from hil.labgrid.session import LabSession
    from hil.rack import Selector, resolve_port

    data = os.urandom(args.put_size)
    with tempfile.TemporaryDirectory(prefix="bench-labgrid-") as state:
        lab = testlab.start_lab(state, hosts=1, boards_per_host=1)
        try:
            board_id = lab.boards[0]
            lab.hosts[0].sims.boards[0].control.set_baud(BAUD)
            local_port = os.path.realpath(lab.board_dir(board_id) / "port")
            session = LabSession.open(lab.address, run="bench", worker=None, owner_pid=None)
            try:
                lease = session.manager.acquire(Selector(id=board_id), timeout=30)
                entry = lease.board
                url = resolve_port(entry.port_spec, where=entry.id)
                remote = measure(lambda: url, args.rounds, data, "labgrid")
                lease.release()
            finally:
                session.close()
            local = measure(lambda: local_port, args.rounds, data, "local")
        finally:
            lab.stop()

    print(f"board {board_id} at {BAUD} baud; labgrid port {url}")
    print(f"{'operation':<36} {'labgrid':>10} {'local':>10} {'ratio':>7}")
    rows = [("exec round trip (pass)", remote[0], local[0])]
    rows.append((f"put {args.put_size // 1000} kB random", remote[1], local[1]))
    for name, r, loc in rows:
        print(f"{name:<36} {r * 1e3:8.2f}ms {loc * 1e3:8.2f}ms {r / loc:6.2f}x")
    ok = all(r / loc <= TARGET for _, r, loc in rows)
    print("targets met" if ok else f"TARGETS MISSED (at most {TARGET}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
