"""Leases between real processes: distinct boards, timeouts naming holders, ``kill -9``, quarantine.

Each child is a fresh Python process using the public API, as an xdist worker or a second pytest
run would. Children report on stdout (``HOLD <board>``, ``TIMEOUT <message>``, ...) and the test
waits for those lines with a deadline, never for a fixed time.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.errors import BoardQuarantined
from hil.rack import Board, LeaseManager, Quarantine, Selector

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses kill -9")

#: Generous: these deadlines only bound a hang, they do not measure anything.
DEADLINE = 60.0

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from hil.errors import LeaseTimeout
from hil.rack import Board, LeaseManager, Quarantine, Selector

mode, lock_dir, worker, timeout, n_boards = sys.argv[1:6]
extra = sys.argv[6:]
boards = [Board(id=f"b{i}", port=f"/dev/ttyFAKE{i}", platform="unix") for i in range(int(n_boards))]
manager = LeaseManager(boards, lock_dir, worker=worker, run="run-1", poll_interval=0.01,
                       quarantine=Quarantine.for_run(lock_dir, "run-1"))

def say(*words):
    print(*words, flush=True)

if mode == "hold":
    say("WAITING")
    try:
        lease = manager.acquire(Selector(), timeout=float(timeout))
    except LeaseTimeout as error:
        say("TIMEOUT", error)
        sys.exit(3)
    say("HOLD", lease.board.id)
    sys.stdin.readline()
    lease.release()
    say("RELEASED")
elif mode == "quarantine":
    Quarantine.for_run(lock_dir, "run-1", worker=worker).add(extra[0], "dead in " + worker)
    say("QUARANTINED", extra[0])
elif mode == "churn":
    rounds, markers, go = int(extra[0]), Path(extra[1]), Path(extra[2])
    journal = []
    waited = 0
    say("READY")
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("no go")
        time.sleep(0.001)
    for _ in range(rounds):
        lease = manager.try_acquire()
        if lease is None:
            waited += 1
            lease = manager.acquire(timeout=float(timeout))
        start = time.monotonic_ns()
        # Exclusive create: fails if anyone else believes they hold this board right now.
        try:
            fd = os.open(markers / lease.board.id, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            say("CONFLICT", lease.board.id)
            sys.exit(1)
        os.close(fd)
        time.sleep(0.002)  # the work done on the board; it widens the window for a conflict
        os.unlink(markers / lease.board.id)
        journal.append((lease.board.id, start, time.monotonic_ns()))
        lease.release()
    say("DONE", json.dumps({"waited": waited, "journal": journal}))
"""


class Child:
    """A child process whose stdout lines arrive in a queue, read with deadlines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def expect(self, word: str, timeout: float = DEADLINE) -> str:
        """The rest of the next line, which must start with ``word``; waits up to ``timeout``."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            _, err = self.process.communicate()
            pytest.fail(f"child {self.pid} said nothing within {timeout} s; stderr: {err}")
        if not line.startswith(word):
            pytest.fail(f"child {self.pid}: expected {word!r}, got {line!r}")
        return line[len(word) :].strip()

    def silent(self) -> bool:
        return self.lines.empty()

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def wait(self) -> int:
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture
def spawn() -> Iterator[type[Child]]:
    """Start children; any still running at the end are killed (ours only, by their handle)."""
    children: list[Child] = []

    class Tracked(Child):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            children.append(self)

    yield Tracked
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait(timeout=DEADLINE)
        for stream in (child.process.stdin, child.process.stdout, child.process.stderr):
            if stream is not None:
                stream.close()


def boards(count: int) -> list[Board]:
    return [Board(id=f"b{i}", port=f"/dev/ttyFAKE{i}", platform="unix") for i in range(count)]


def test_two_processes_hold_distinct_boards_and_a_third_times_out_naming_both(
    tmp_path: Path, spawn: type[Child]
) -> None:
    a = spawn("hold", str(tmp_path), "gw-a", "30", "2")
    b = spawn("hold", str(tmp_path), "gw-b", "30", "2")
    a.expect("WAITING")
    b.expect("WAITING")
    board_a, board_b = a.expect("HOLD"), b.expect("HOLD")
    assert {board_a, board_b} == {"b0", "b1"}

    c = spawn("hold", str(tmp_path), "gw-c", "0.3", "2")
    c.expect("WAITING")
    message = c.expect("TIMEOUT")
    assert c.wait() == 3
    assert "no board matching (any board) became free within 0.3 s" in message
    assert f"{board_a} held by pid {a.pid} " in message and "(worker gw-a, run run-1)" in message
    assert f"{board_b} held by pid {b.pid} " in message and "(worker gw-b, run run-1)" in message

    a.send("release")
    a.expect("RELEASED")
    assert a.wait() == 0
    d = spawn("hold", str(tmp_path), "gw-d", "30", "2")
    d.expect("WAITING")
    assert d.expect("HOLD") == board_a


def test_kill_9_of_a_holder_frees_its_board_for_a_waiter(
    tmp_path: Path, spawn: type[Child]
) -> None:
    holder = spawn("hold", str(tmp_path), "gw-a", "30", "1")
    holder.expect("WAITING")
    assert holder.expect("HOLD") == "b0"
    observer = LeaseManager(boards(1), tmp_path)
    state = observer.state("b0")
    assert not state.free and state.holder is not None and state.holder.pid == holder.pid

    waiter = spawn("hold", str(tmp_path), "gw-b", str(DEADLINE), "1")
    waiter.expect("WAITING")
    assert observer.try_acquire() is None  # still held: the waiter cannot have it either
    assert waiter.silent()

    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL

    assert waiter.expect("HOLD") == "b0"
    state = observer.state("b0")
    assert state.holder is not None and state.holder.pid == waiter.pid


def test_a_board_quarantined_by_one_worker_is_out_for_the_other_workers_of_the_run(
    tmp_path: Path, spawn: type[Child]
) -> None:
    worker = spawn("quarantine", str(tmp_path), "gw-a", "0", "2", "b1")
    assert worker.expect("QUARANTINED") == "b1"
    assert worker.wait() == 0
    same_run = LeaseManager(boards(2), tmp_path, quarantine=Quarantine.for_run(tmp_path, "run-1"))

    with pytest.raises(BoardQuarantined, match=r"b1 quarantined in this run \(dead in gw-a\)"):
        same_run.acquire(Selector(id="b1"), timeout=DEADLINE)
    with same_run.acquire(timeout=0) as lease:
        assert lease.board.id == "b0"
        assert same_run.try_acquire() is None


def test_competing_processes_never_share_a_board(tmp_path: Path, spawn: type[Child]) -> None:
    markers = tmp_path / "in-use"
    markers.mkdir()
    go = tmp_path / "go"
    rounds = 30
    children = [
        spawn(
            "churn",
            str(tmp_path / "locks"),
            f"gw{i}",
            str(DEADLINE),
            "2",
            str(rounds),
            str(markers),
            str(go),
        )
        for i in range(3)
    ]
    for child in children:
        child.expect("READY")
    go.touch()  # all start at once, so that they really compete

    results = [json.loads(child.expect("DONE")) for child in children]
    assert [child.wait() for child in children] == [0, 0, 0]

    journal = [
        (board, start, end, index)
        for index, r in enumerate(results)
        for board, start, end in r["journal"]
    ]
    assert len(journal) == 3 * rounds
    for board in ("b0", "b1"):
        spans = sorted((start, end, who) for b, start, end, who in journal if b == board)
        for (_, end, who), (next_start, _, next_who) in itertools.pairwise(spans):
            assert end <= next_start, f"{board} held by {who} and {next_who} at once"
    assert sum(r["waited"] for r in results) > 0, "no process ever had to wait: nothing was tested"
    assert not any(markers.iterdir())
    assert list((tmp_path / "locks").glob("*.lease")) == []  # each went with its last holder


def test_a_waiting_process_keeps_waiting_while_the_board_is_held(
    tmp_path: Path, spawn: type[Child]
) -> None:
    """The waiter must not take a held board, however long it polls (here: many rounds)."""
    holder = spawn("hold", str(tmp_path), "gw-a", "30", "1")
    holder.expect("WAITING")
    holder.expect("HOLD")
    waiter = spawn("hold", str(tmp_path), "gw-b", str(DEADLINE), "1")
    waiter.expect("WAITING")

    # Let the waiter poll (every 10 ms) until its holder file would have shown up, had it won.
    observer = LeaseManager(boards(1), tmp_path)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        state = observer.state("b0")
        assert state.holder is not None and state.holder.pid == holder.pid
        assert waiter.silent()
    holder.send("release")
    holder.expect("RELEASED")
    assert waiter.expect("HOLD") == "b0"
