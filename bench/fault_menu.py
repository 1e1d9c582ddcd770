"""The fault menu in live operations (issue 13's proof).

Every fault of the virtual board is injected while exec, eval, put+get and deploy run: on the
unix kind all of them, on the micro:bit kind (real MicroPython 1.9.2 firmware in QEMU, plain raw
REPL) the wire faults. Each operation's outcome is counted: a value returned as success must be
right (``wrong`` must stay 0) and every failure must be an infrastructure error
(``mis-categorised`` must stay 0). Prints the counts; exits 1 when either is not 0.

    .venv/bin/python bench/fault_menu.py [--rounds 2] [--kinds unix,microbit]

``corrupt-both`` alters bytes towards the board too; it runs on plain raw links only (a unix
board with raw-paste off, and the micro:bit), the links without flow control whose code travels
checked. A raw-paste link is flow-controlled and its code is taken as it arrives.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import hil.sim
from hil.board import Board
from hil.errors import INFRASTRUCTURE, HilError

#: name -> (fault kind, parameters)
FAULTS: dict[str, tuple[str, dict[str, object]]] = {
    "stall": ("stall", {"seconds": 1.0}),
    "hang": ("hang", {}),
    "noise": ("noise", {"count": 4, "rate": 0.01}),
    "drop": ("drop", {"count": 2, "rate": 0.005}),
    "corrupt": ("corrupt", {"count": 2, "rate": 0.005}),
    "corrupt-both": ("corrupt", {"count": 1, "rate": 0.003, "direction": "both"}),
    "slow_boot": ("slow_boot", {"seconds": 1.0}),
    "no_raw_paste": ("no_raw_paste", {}),
    "raw_paste_abort": ("raw_paste_abort", {"after": 64}),
}
WIRE = ("stall", "hang", "noise", "drop", "corrupt", "corrupt-both")
SEEDED = ("noise", "drop", "corrupt")
#: Seconds each operation may take (a hang is noticed within it).
OP_TIMEOUT = 8.0


def operations(
    board: Board, tmp: Path, seed: int, flat: bool
) -> dict[str, tuple[Callable, object]]:
    """Each operation: a callable and the value it must return."""
    data = os.urandom(500 + seed)
    tree = tmp / f"tree{seed}"
    tree.mkdir(exist_ok=True)
    (tree / "m.py").write_bytes(b"X = %d\n" % seed)
    module = "m.py" if flat else "/m.py"
    return {
        "exec": (lambda: board.exec(f"print({seed} * 3, 'a\\x04b')", timeout=OP_TIMEOUT),
                 f"{seed * 3} a\x04b\n"),
        "eval": (lambda: board.eval(f"[{seed}, 'a\\x04b', b'\\x00\\xff' * 20]", timeout=OP_TIMEOUT),
                 [seed, "a\x04b", b"\x00\xff" * 20]),
        "put+get": (lambda: (board.put(data, "/fm.bin", timeout=OP_TIMEOUT),
                             board.get("/fm.bin", timeout=OP_TIMEOUT))[1], data),
        "deploy": (lambda: (board.deploy(tree, "/"),
                            board.eval(f"open({module!r}).read()", timeout=OP_TIMEOUT))[1],
                   f"X = {seed}\n"),
    }  # fmt: skip


def run_kind(kind: str, rounds: int, counts: Counter[str], log: list[str]) -> None:
    """All faults of the menu, ``rounds`` times, on one fresh board of ``kind``."""
    with tempfile.TemporaryDirectory(prefix="fault-menu-") as state:
        run = hil.sim.start(Path(state), 1, kind=kind, owner_pid=os.getpid())
        try:
            vb = run.boards[0]
            names = WIRE if kind == "microbit" else tuple(FAULTS)
            for rnd in range(rounds):
                for name in names:
                    fault, params = FAULTS[name]
                    if fault in SEEDED:
                        params = dict(params, seed=rnd)
                    plain = name == "corrupt-both"
                    one_fault(vb, kind, name, fault, params, plain, rnd, Path(state), counts, log)
        finally:
            run.stop()


def one_fault(
    vb: hil.sim.SimBoard,
    kind: str,
    name: str,
    fault: str,
    params: dict[str, object],
    plain: bool,
    rnd: int,
    tmp: Path,
    counts: Counter[str],
    log: list[str],
) -> None:
    vb.control.wait_ready()
    board = Board.open(vb.port, name=kind, wait=10, raw_paste=not plain)
    try:
        board.probe()
        for op, (call, want) in operations(board, tmp, rnd, kind == "microbit").items():
            vb.control.fault(fault, **params)
            try:
                if fault == "slow_boot":  # the fault acts on the next boot: reset, reconnect
                    vb.control.reset()
                    board.repl.reconnect(20)
                got = call()
                outcome = "right" if got == want else "WRONG"
                if outcome == "WRONG":
                    log.append(f"{kind} {name} {op}: wrong value {got!r:.80}")
            except HilError as exc:
                outcome = "infra" if exc.fault == INFRASTRUCTURE else "MISCAT"
                if outcome == "MISCAT":
                    log.append(f"{kind} {name} {op}: {exc}")
            counts[outcome] += 1
            counts[f"{kind}:{name}:{outcome}"] += 1
            vb.control.clear_faults()
            if fault == "hang":
                vb.control.reset()  # a hung board needs its reset button
                vb.control.wait_ready()
                board.close()
                board = Board.open(vb.port, name=kind, wait=10, raw_paste=not plain)
    finally:
        board.close()


def main() -> int:
    global OP_TIMEOUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", default="unix,microbit")
    parser.add_argument("--op-timeout", type=float, default=OP_TIMEOUT, help="seconds per op")
    args = parser.parse_args()
    OP_TIMEOUT = args.op_timeout
    counts: Counter[str] = Counter()
    log: list[str] = []
    for kind in args.kinds.split(","):
        run_kind(kind, args.rounds, counts, log)
    print(f"{'board:fault':<32} {'right':>6} {'infra':>6} {'WRONG':>6} {'MISCAT':>6}")
    for key in sorted({k.rsplit(":", 1)[0] for k in counts if ":" in k}):
        cells = [counts[f"{key}:{o}"] for o in ("right", "infra", "WRONG", "MISCAT")]
        print(f"{key:<32} " + " ".join(f"{c:6d}" for c in cells))
    for line in log:
        print(line)
    print(
        f"right {counts['right']}, infrastructure errors {counts['infra']}, "
        f"wrong values {counts['WRONG']}, mis-categorised {counts['MISCAT']}"
    )
    return 0 if counts["WRONG"] == 0 and counts["MISCAT"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
