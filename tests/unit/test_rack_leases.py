"""Leases within one process: distinct boards, waiting, timeouts that name the holder, quarantine.

Every lease takes its own OS lock (its own open file), so two managers in one process contend
exactly as two processes do; the cross-process cases are in tests/integration/test_leases.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hil.errors import BoardQuarantined, ConfigError, LeaseTimeout
from hil.rack import (
    Board,
    Holder,
    Lease,
    LeaseManager,
    NoMatchingBoard,
    Quarantine,
    Selector,
    default_lock_dir,
    prune_run_dirs,
)

BOARDS = (
    Board(id="esp32-a", port="/dev/ttyUSB0", platform="esp32"),
    Board(id="esp32-b", port="/dev/ttyUSB1", platform="esp32", tags=("sd",)),
    Board(id="pico", port="/dev/ttyACM0", platform="rp2"),
)
ESP32 = Selector(platform="esp32")


def manager(lock_dir: Path, worker: str, **kwargs: object) -> LeaseManager:
    return LeaseManager(BOARDS, lock_dir, worker=worker, run="run-1", poll_interval=0.01, **kwargs)  # type: ignore[arg-type]


def dead_pid() -> int:
    """The pid of a process that has certainly exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_two_holders_get_distinct_boards_and_a_third_gets_none(tmp_path: Path) -> None:
    first = manager(tmp_path, "gw0").try_acquire(ESP32)
    second = manager(tmp_path, "gw1").try_acquire(ESP32)

    assert first is not None and second is not None
    assert {first.board.id, second.board.id} == {"esp32-a", "esp32-b"}
    assert manager(tmp_path, "gw2").try_acquire(ESP32) is None
    # Another platform is unaffected.
    pico = manager(tmp_path, "gw2").try_acquire(Selector(platform="rp2"))
    assert pico is not None and pico.board.id == "pico"

    second.release()
    third = manager(tmp_path, "gw2").try_acquire(ESP32)
    assert third is not None and third.board.id == second.board.id


def test_the_holder_file_tells_who_holds_and_goes_away_on_release(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "gw3", label="CI job 42")
    lease = mgr.acquire(Selector(id="pico"), timeout=0)
    info = json.loads(mgr.info_path("pico").read_text())

    assert info["pid"] == os.getpid()
    assert (info["worker"], info["run"], info["label"]) == ("gw3", "run-1", "CI job 42")
    assert mgr.state("pico").holder == lease.holder

    lease.release()
    lease.release()  # twice is harmless
    assert not mgr.info_path("pico").exists()
    assert mgr.state("pico").free


def test_a_lease_is_a_context_manager(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "gw0")
    with mgr.acquire(Selector(id="pico"), timeout=0) as lease:
        assert lease.held
        assert not mgr.state("pico").free
    assert not lease.held
    assert mgr.state("pico").free


def test_acquire_waits_until_a_board_comes_free(tmp_path: Path) -> None:
    holder = manager(tmp_path, "gw0").acquire(Selector(id="pico"), timeout=0)
    waiter = manager(tmp_path, "gw1")
    attempts: list[Lease | None] = []
    original = waiter.try_acquire

    def try_acquire(selector: Selector | None = None) -> Lease | None:
        lease = original(selector)
        attempts.append(lease)
        if lease is None and len(attempts) == 2:
            holder.release()  # the holder gives up while the waiter waits
        return lease

    waiter.try_acquire = try_acquire  # type: ignore[method-assign]
    lease = waiter.acquire(Selector(id="pico"), timeout=30)

    assert lease.board.id == "pico"
    assert attempts[:2] == [None, None]


def test_timeout_names_the_holder_of_each_matching_board(tmp_path: Path) -> None:
    held = [manager(tmp_path, f"gw{i}").acquire(ESP32, timeout=0) for i in range(2)]

    with pytest.raises(LeaseTimeout) as info:
        manager(tmp_path, "gw9").acquire(ESP32, timeout=0.05)

    message = str(info.value)
    assert "\n" not in message
    assert (
        f"lease in {tmp_path}: no board matching (platform='esp32') became free within 0.05 s"
        in message
    )
    for lease in held:
        expected = f"{lease.board.id} held by pid {os.getpid()} on {lease.holder.host} "
        assert expected in message
    assert "(worker gw0, run run-1)" in message and "(worker gw1, run run-1)" in message
    assert "pico" not in message


def test_stale_holder_files_never_decide_and_are_reported_as_stale(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "gw0")
    ghost = Holder(pid=dead_pid(), host=Holder.current(worker=None, run=None).host, since=0.0)
    tmp_path.mkdir(exist_ok=True)
    mgr.info_path("pico").write_text(json.dumps(ghost.__dict__))

    # A dead holder's file next to a free lock: the board is free.
    assert mgr.state("pico").free
    lease = mgr.acquire(Selector(id="pico"), timeout=0)
    assert json.loads(mgr.info_path("pico").read_text())["pid"] == os.getpid()

    # A live lock with a dead holder's file (the holder had not written its own yet): stale.
    mgr.info_path("pico").write_text(json.dumps(ghost.__dict__))
    assert f"holder info stale (pid {ghost.pid}" in mgr.state("pico").describe()
    # ... and with no file or a garbled one: held by an unknown process.
    mgr.info_path("pico").write_text("{not json")
    assert mgr.state("pico").describe() == "pico held by an unknown process (no holder info)"
    assert lease.held


def test_no_matching_board_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(NoMatchingBoard, match=r"no board matches \(platform='stm32'\): esp32-a: "):
        manager(tmp_path, "gw0").acquire(Selector(platform="stm32"), timeout=3600)


def test_a_quarantined_board_is_not_handed_out_again_in_that_run(tmp_path: Path) -> None:
    # Two workers of one run see the same quarantine through the run directory.
    worker0 = manager(tmp_path, "gw0", quarantine=Quarantine.for_run(tmp_path, "run-1"))
    worker1 = manager(tmp_path, "gw1", quarantine=Quarantine.for_run(tmp_path, "run-1"))
    lease = worker0.acquire(Selector(id="esp32-b"), timeout=0)
    assert worker0.quarantine is not None
    worker0.quarantine.add("esp32-b", "no answer after power cycle")
    lease.release()

    held = worker1.acquire(ESP32, timeout=0)
    assert held.board.id == "esp32-a"
    with pytest.raises(BoardQuarantined, match="esp32-b quarantined in this run"):
        worker1.acquire(Selector(id="esp32-b"), timeout=3600)
    assert worker1.try_acquire(ESP32) is None  # esp32-a is held, esp32-b is out

    # Another run starts with every board in service.
    other_run = manager(tmp_path, "gw0", quarantine=Quarantine.for_run(tmp_path, "run-2"))
    assert other_run.acquire(Selector(id="esp32-b"), timeout=0).board.id == "esp32-b"


def test_quarantine_keeps_the_first_reason_and_lists_records(tmp_path: Path) -> None:
    quarantine = Quarantine.for_run(tmp_path, "r", worker="gw4")
    quarantine.add("pico", "hung   after\n test_x")
    quarantine.add("pico", "second reason")

    record = Quarantine.for_run(tmp_path, "r").get("pico")
    assert record is not None and record.reason == "hung after test_x"
    assert str(record) == "pico: hung after test_x (by gw4)"
    assert "pico" in quarantine and "esp32-a" not in quarantine
    assert list(quarantine.records()) == ["pico"]


def test_bad_run_and_board_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bad run id"):
        Quarantine.for_run(tmp_path, "../escape")
    with pytest.raises(ConfigError, match="bad board id"):
        Quarantine.for_run(tmp_path, "r").add("../../x", "reason")


def test_prune_removes_only_old_run_dirs(tmp_path: Path) -> None:
    Quarantine.for_run(tmp_path, "old").add("pico", "x")
    Quarantine.for_run(tmp_path, "new").add("pico", "x")
    for path in [tmp_path / "runs" / "old", *(tmp_path / "runs" / "old").rglob("*")]:
        os.utime(path, (1, 1))

    removed = prune_run_dirs(tmp_path, older_than=3600)

    assert removed == [tmp_path / "runs" / "old"]
    assert (tmp_path / "runs" / "new").is_dir()


def test_threads_of_one_process_never_share_a_board(tmp_path: Path) -> None:
    mgr = manager(tmp_path, "gw0")
    in_use: set[str] = set()
    guard = threading.Lock()
    conflicts: list[str] = []
    rounds: list[str] = []

    def work() -> None:
        for _ in range(25):
            with mgr.acquire(ESP32, timeout=60) as lease:
                with guard:
                    if lease.board.id in in_use:
                        conflicts.append(lease.board.id)
                    in_use.add(lease.board.id)
                with guard:
                    in_use.discard(lease.board.id)
                    rounds.append(lease.board.id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert conflicts == []
    assert len(rounds) == 100


def test_lock_dir_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(ConfigError, match="cannot create the lock directory"):
        LeaseManager(BOARDS, blocker / "locks").try_acquire()


def test_default_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "explicit"))
    assert default_lock_dir() == tmp_path / "explicit"
    assert LeaseManager(BOARDS).lock_dir == tmp_path / "explicit"

    monkeypatch.delenv("HIL_LOCK_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert default_lock_dir() == tmp_path / "cache" / "mpy-hil" / "leases"
