"""Benchmark: our REPL driver against mpremote's SerialTransport on the same virtual board.

Not a test (no timed test asserts a speed): run it by hand or in a perf job and read the table.

    python bench/bench_repl.py [--rounds N] [--put-size BYTES]

Measures, on one virtual board, alternately with each tool holding the port:

* exec round trip of ``pass`` (unthrottled link, and at 115200 baud);
* eval of a 10 kB value, a str and bytes (mpremote sends ``repr``; we send bytes raw with two
  escapes where the board has ``sys.stdout.buffer``, and every answer with a checksum line);
* eval of 10 kB of random bytes at 115200 baud (issue 12: at least 2x);
* put of a file of random bytes at 115200 baud (mpremote's ``cp`` path, ``fs_writefile``), also
  as a fraction of the line rate (11520 bytes/s at 8N1);
* get of the same size at 115200 baud against mpremote's ``fs cp :f .`` path (``fs_readfile``),
  as a fraction of the line rate (issue 12: at least 85 %).

A ratio is mpremote's time divided by ours: above 1 means we are faster. Targets: no ratio below
1, except eval of a str at 115200 baud (at least 0.95: a str travels as ``repr`` either way, and
our answer's check, the code of ``_o`` and its trailer, costs about 30 ms at that rate); put at
least 1.5 and 70 % of the line rate; bytes eval at least 2; get at least 85 % of the line rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from mpremote.transport_serial import SerialTransport

import hil.sim
from hil.board import Board

BAUD = 115200
LINE_RATE = BAUD / 10  # bytes per second: 8 data bits, start and stop bit
#: 10 kB values: a str (its repr is as long as the value) and bytes (repr escapes most bytes).
TEN_KB = {
    "str": ("'x' * 10240", "x" * 10240),
    "bytes": ("bytes(range(256)) * 40", bytes(range(256)) * 40),
}


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds per call (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ours(port: str) -> Board:
    return Board.open(port)


def theirs(port: str) -> SerialTransport:
    transport = SerialTransport(port, baudrate=BAUD)
    transport.enter_raw_repl(soft_reset=False)
    return transport


def bench_exec_eval(port: str, rounds: int, label: str) -> list[tuple[str, float, float]]:
    evals = max(rounds // 10, 5)
    board = ours(port)
    try:
        board.probe()  # once, as a session does: answers pick their encoding from the facts
        t_exec = timed(lambda: board.repl.exec("pass"), rounds)
        t_eval = {}
        for kind, (expr, value) in TEN_KB.items():
            assert board.eval(expr) == value
            t_eval[kind] = timed(lambda expr=expr: board.eval(expr), evals)
    finally:
        board.close()
    mp = theirs(port)
    try:
        m_exec = timed(lambda: mp.exec("pass"), rounds)
        m_eval = {}
        for kind, (expr, value) in TEN_KB.items():
            assert mp.eval(expr) == value
            m_eval[kind] = timed(lambda expr=expr: mp.eval(expr), evals)
    finally:
        mp.close()
    rows = [(f"exec 'pass' round trip ({label})", t_exec, m_exec)]
    for kind in TEN_KB:
        rows.append((f"eval of a 10 kB {kind} ({label})", t_eval[kind], m_eval[kind]))
    return rows


def bench_put(port: str, size: int) -> tuple[float, float]:
    data = os.urandom(size)
    board = ours(port)
    try:
        start = time.perf_counter()
        board.put(data, "/bench_ours.bin")  # includes the sha256 verification on the board
        t_put = time.perf_counter() - start
    finally:
        board.close()
    mp = theirs(port)
    try:
        start = time.perf_counter()
        mp.fs_writefile("/bench_mpremote.bin", data)
        m_put = time.perf_counter() - start
    finally:
        mp.close()
    board = ours(port)
    try:  # both arrived intact
        digests = board.sha256_many(["/bench_ours.bin", "/bench_mpremote.bin"])
        assert len(set(digests.values())) == 1 and None not in digests.values()
    finally:
        board.close()
    return t_put, m_put


def bench_returns(port: str, get_size: int) -> tuple[list[tuple[str, float, float]], float]:
    """Compact returns (issue 12): eval of 10 kB random bytes, and get of a random file against
    mpremote's ``fs cp :f .`` path (``fs_readfile``). Returns the rows and our get's seconds."""
    blob, big = os.urandom(10_000), os.urandom(get_size)
    board = ours(port)
    try:
        board.probe()  # once, as a session does: answers pick their encoding from the facts
        board.put(blob, "/bench_blob.bin")
        board.put(big, "/bench_get.bin")
        expr = "open('/bench_blob.bin','rb').read()"
        assert board.eval(expr) == blob
        t_eval = timed(lambda: board.eval(expr), 5)
        assert board.get("/bench_get.bin") == big
        t_get = timed(lambda: board.get("/bench_get.bin"), 2)
    finally:
        board.close()
    mp = theirs(port)
    try:
        assert mp.eval(expr) == blob
        m_eval = timed(lambda: mp.eval(expr), 5)
        assert mp.fs_readfile("/bench_get.bin") == big
        m_get = timed(lambda: mp.fs_readfile("/bench_get.bin"), 2)
    finally:
        mp.close()
    rows = [
        (f"eval of 10 kB random bytes ({BAUD} baud)", t_eval, m_eval),
        (f"get {get_size // 1000} kB random ({BAUD} baud)", t_get, m_get),
    ]
    return rows, t_get


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="exec round trips per tool")
    parser.add_argument("--put-size", type=int, default=100_000, help="bytes to put")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-repl-") as state:
        run = hil.sim.start(state, 1)
        try:
            vb = run.boards[0]
            rows = bench_exec_eval(vb.port, args.rounds, "unthrottled")
            vb.control.set_baud(BAUD)
            rows += bench_exec_eval(vb.port, max(args.rounds // 4, 20), f"{BAUD} baud")
            t_put, m_put = bench_put(vb.port, args.put_size)
            returns, t_get = bench_returns(vb.port, args.put_size)
            rows += returns
        finally:
            run.stop()

    print(f"{'operation':<44} {'ours':>10} {'mpremote':>10} {'ratio':>7}")
    for name, t, m in rows:
        print(f"{name:<44} {t * 1e3:8.2f}ms {m * 1e3:8.2f}ms {m / t:6.2f}x")
    name = f"put {args.put_size // 1000} kB random ({BAUD} baud)"
    print(f"{name:<44} {t_put:9.2f}s {m_put:9.2f}s {m_put / t_put:6.2f}x")
    ours_rate, their_rate = args.put_size / t_put, args.put_size / m_put
    print(
        f"put throughput: ours {ours_rate:,.0f} B/s = {ours_rate / LINE_RATE:.0%} of the line "
        f"rate ({LINE_RATE:,.0f} B/s), mpremote {their_rate:,.0f} B/s = "
        f"{their_rate / LINE_RATE:.0%}"
    )
    get_rate = args.put_size / t_get
    print(f"get throughput: ours {get_rate:,.0f} B/s = {get_rate / LINE_RATE:.0%} of the line rate")
    missed = [
        name
        for name, t, m in rows
        if m / t < (0.95 if name.startswith("eval of a 10 kB str") and "baud)" in name else 1)
    ]
    missed += ["put ratio"] * (m_put / t_put < 1.5) + ["put rate"] * (ours_rate < 0.7 * LINE_RATE)
    missed += ["get rate"] * (get_rate < 0.85 * LINE_RATE)
    missed += ["eval of random bytes"] * (returns[0][2] / returns[0][1] < 2)
    print("targets met" if not missed else f"TARGETS MISSED: {', '.join(missed)}")
    ok = not missed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
