"""A lab across hosts through a real labgrid coordinator: three exporters (``hil lab exporter``,
each its own process group standing for a host), two virtual boards behind each, ser2net from
Debian, places set up by ``hil lab places``; pytest runs lease them with ``--hil-labgrid``.

Who used which board is checked from the board side: a small plugin appends ``<run>:<worker>
start``/``end`` to ``/hil_users`` on the board's own flash around every test, and the test reads
that file afterwards through the board's local port, not through labgrid.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.labgrid import testlab

pytestmark = pytest.mark.skipif(testlab.missing() is not None, reason=str(testlab.missing()))

ROOT = Path(__file__).resolve().parents[2]

MARKER_PLUGIN = """
import os
import pytest

def _note(board, what):
    run = os.environ.get("HIL_MARK_RUN", "run")
    who = run + ":" + os.environ.get("PYTEST_XDIST_WORKER", "main")
    board.exec("_f = open('/hil_users', 'a')\\n_f.write(%r)\\n_f.close()" % f"{who} {what}\\n")

@pytest.fixture(autouse=True)
def _hil_lab_marker(request):
    if "board" not in request.fixturenames:
        yield
        return
    board = request.getfixturevalue("board")
    _note(board, "start")
    yield
    try:
        _note(board, "end")
    except Exception:
        pass
"""

SLOW_TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_slow(board, n):
    assert board.eval("1 + %d" % n) == 1 + n
    board.exec("import time\\ntime.sleep({seconds})")
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testlab.Lab]:
    started = testlab.start_lab(tmp_path_factory.mktemp("lab"), hosts=3, boards_per_host=2)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def fresh(lab: testlab.Lab) -> testlab.Lab:
    """Every host's exporter running, every place in service and free, board logs empty."""
    for host in lab.hosts:
        if host.exporter is None or host.exporter.poll() is not None:
            lab.start_exporter(host)
    lab.wait_for_resources()
    with lab.session() as session:
        for name, place in session.places().items():
            if place.acquired is not None:  # a failed test's leftovers (it failed for them)
                session.release(name)
            session.set_tags(name, {"hil": "ready"})
            session.set_comment(name, "")
    for board in lab.boards:
        board_exec(lab, board, "import os\ntry:\n os.remove('/hil_users')\nexcept OSError:\n pass")
    return lab


def board_exec(lab: testlab.Lab, board_id: str, code: str) -> str:
    """Run code on a board through its own local port (the board side, not labgrid)."""
    from hil.board import Board

    port = os.path.realpath(lab.board_dir(board_id) / "port")
    with Board.open(port, name=board_id, wait=10) as link:
        return link.exec(code)


def board_log(lab: testlab.Lab, board_id: str) -> list[tuple[str, str]]:
    text = board_exec(
        lab, board_id, "try:\n print(open('/hil_users').read())\nexcept OSError:\n pass"
    )
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]  # type: ignore[misc]


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """pytest runs started by a test, each in its own process group, killed at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def start_run(
    runs: list[subprocess.Popen],
    lab: testlab.Lab,
    directory: Path,
    args: list[str],
    *,
    name: str = "run",
    out_dir: Path | None = None,
) -> subprocess.Popen:
    out_dir = out_dir or directory
    plugins = out_dir / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "hil_lab_marker.py").write_text(MARKER_PLUGIN)
    # a run of its own, even when this test runs in an xdist worker
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(HIL_MARK_RUN=name, PYTHONPATH=f"{plugins}{os.pathsep}{ROOT}")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p"]
    command += ["hil_lab_marker", "--hil-labgrid", lab.address, "-W", "ignore::DeprecationWarning"]
    proc = subprocess.Popen(
        command + args,
        cwd=directory,
        env=env,
        stdout=open(out_dir / f"{name}.out", "wb"),  # noqa: SIM115 - the child's
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    runs.append(proc)
    return proc


def output(directory: Path, name: str = "run") -> str:
    """A run's output; on a failure the error lines come first, so that a message shows them."""
    text = (directory / f"{name}.out").read_text(errors="replace")
    errors = sorted({line for line in text.splitlines() if line.startswith("E   ")})
    return "\n".join(errors[:20]) + "\n" + text


def slow_tests(directory: Path, count: int, seconds: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "test_slow.py"
    path.write_text(SLOW_TESTS.format(count=count, seconds=seconds))
    return path


def wait_until(probe, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def read_line(proc: subprocess.Popen, timeout: float, what: str, stderr: Path) -> bytes:
    """The next line ``proc`` prints, read by a thread so that the wait has a deadline: a child
    that hangs before printing fails the test after ``timeout`` s, saying what it waited for
    and the end of what it wrote to ``stderr``."""
    assert proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what} (pid {proc.pid}, "
            f"{'running' if proc.poll() is None else f'exited with {proc.returncode}'}); "
            f"its stderr: {stderr.read_text(errors='replace')[-2000:]}"
        ) from None


def reserved(lab: testlab.Lab) -> list[str]:
    with lab.session() as session:
        return [r.token for r in session.reservations()]


def held(lab: testlab.Lab) -> dict[str, str]:
    with lab.session() as session:
        return {n: p.acquired for n, p in session.places().items() if p.acquired}


# --- setting a lab up -------------------------------------------------------------------------


def test_places_carry_the_rack_entries_and_status_shows_them(fresh: testlab.Lab) -> None:
    from hil.labgrid.session import rack_of

    with fresh.session() as session:
        rack = rack_of(session)
        places = session.places()
    assert sorted(rack.ids) == sorted(fresh.boards)
    for board in rack.boards:
        assert board.platform == "unix"
        assert board.capabilities.sd is not None and board.capabilities.sd.slot == 2
        assert board.power is not None and board.power.name == "labgrid"  # not the host's "sim"
        assert board.port == f"labgrid:{fresh.address}/{board.id}"
        tags = places[board.id].tags
        assert tags["tag_virtual"] == "1" and tags["cap_sd"] == "1" and tags["hil"] == "ready"
    status = fresh.hil("status")
    assert status.returncode == 0, status.stderr
    for board in fresh.boards:
        assert board in status.stdout
    assert "NetworkSerialPort" in status.stdout


def test_places_again_keeps_a_quarantine(fresh: testlab.Lab) -> None:
    host = fresh.hosts[0]
    with fresh.session() as session:
        session.set_tags(host.boards[0], {"hil": "quarantined"})
    done = fresh.hil("places", str(host.rack), "--exporter", host.name)
    assert done.returncode == 0, done.stderr
    with fresh.session() as session:
        assert session.place(host.boards[0]).tags["hil"] == "quarantined"
    cleared = fresh.hil("clear", host.boards[0])
    assert cleared.returncode == 0 and "back in service" in cleared.stdout
    with fresh.session() as session:
        assert session.place(host.boards[0]).tags["hil"] == "ready"


def test_power_cycle_through_the_network_power_port(fresh: testlab.Lab) -> None:
    """The place's NetworkPowerPort (model rest, served by the exporter host) cycles the board:
    the board boots again (its uptime starts over) and answers through labgrid."""
    from hil.board import Board
    from hil.labgrid.session import LabSession
    from hil.rack import Selector, resolve_port

    board_id = fresh.boards[1]
    control = fresh.hosts[0].sims.boards[1].control
    boots = control.status()["boots"]
    session = LabSession.open(fresh.address, run="power", worker=None, owner_pid=None)
    try:
        lease = session.manager.acquire(Selector(id=board_id), timeout=20)
        entry = lease.board
        with Board.open(
            lambda: resolve_port(entry.port_spec, where=entry.id), name=entry.id
        ) as link:
            link.exec("import builtins\nbuiltins._hil_mark = 42")
            from hil.drivers import lookup

            power = lookup("power", "labgrid").build(entry, {})
            power.cycle(link, timeout=20)
            assert link.eval("1 + 1") == 2
            assert link.eval("getattr(__import__('builtins'), '_hil_mark', None)") is None
            assert control.status()["boots"] > boots  # the board itself says it booted again
        lease.release()
    finally:
        session.close()


# --- runs over the lab ------------------------------------------------------------------------


def test_suite_on_six_boards_four_workers_each_its_own_board(
    fresh: testlab.Lab, runs: list[subprocess.Popen], tmp_path: Path
) -> None:
    proc = start_run(runs, fresh, ROOT, ["-n", "4", "tests/hil"], name="suite", out_dir=tmp_path)
    proc.wait(600)
    text = output(tmp_path, "suite")
    assert proc.returncode == 0, text[:3000]
    boards_of: dict[str, set[str]] = {}
    workers_of: dict[str, set[str]] = {}
    for board in fresh.boards:
        for who, _ in board_log(fresh, board):
            boards_of.setdefault(who, set()).add(board)
            workers_of.setdefault(board, set()).add(who)
    assert len(boards_of) == 4, boards_of  # every worker ran tests...
    assert all(len(b) == 1 for b in boards_of.values()), boards_of  # ...on one board each
    assert all(len(w) == 1 for w in workers_of.values()), workers_of  # no board shared
    assert not held(fresh)  # everything released at the end


def test_two_concurrent_runs_never_share_a_place(
    fresh: testlab.Lab, runs: list[subprocess.Popen], tmp_path: Path
) -> None:
    slow_tests(tmp_path, 10, 0.5)
    first = start_run(runs, fresh, tmp_path, ["-n", "2", "test_slow.py"], name="A")
    second = start_run(runs, fresh, tmp_path, ["-n", "2", "test_slow.py"], name="B")
    assert first.wait(300) == 0, output(tmp_path, "A")[:3000]
    assert second.wait(300) == 0, output(tmp_path, "B")[:3000]
    runs_seen = set()
    for board in fresh.boards:
        current = None
        for who, what in board_log(fresh, board):
            runs_seen.add(who.split(":")[0])
            if what == "start":
                assert current in (None, who), f"{board}: {who} started while {current} used it"
                current = who
            else:
                assert current == who, f"{board}: {who} ended but {current} held it"
                current = None
    assert runs_seen == {"A", "B"}
    assert not held(fresh)


def test_kill_9_of_a_run_frees_its_places_for_the_other(
    fresh: testlab.Lab, runs: list[subprocess.Popen], tmp_path: Path
) -> None:
    from hil.labgrid.reclaim import RECLAIM_BOUND

    slow_tests(tmp_path, 40, 1)
    victim = start_run(runs, fresh, tmp_path, ["-n", "2", "test_slow.py"], name="victim")
    holders = wait_until(lambda: (h := held(fresh)) and len(h) == 2 and h, 120, "two places held")
    # the other run needs every board (each test once per board): it waits for the victim's
    other_dir = tmp_path / "other"
    slow_tests(other_dir, 1, 0)
    other = start_run(
        runs, fresh, other_dir, ["--hil-spread", "board", "test_slow.py"], name="other"
    )
    wait_until(lambda: reserved(fresh), 120, "the other run to wait on a reservation")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    killed = time.monotonic()
    wait_until(
        lambda: not set(holders.values()) & set(held(fresh).values()),
        RECLAIM_BOUND + 10,
        "the killed run's places to be released",
    )
    assert time.monotonic() - killed <= RECLAIM_BOUND
    assert other.wait(300) == 0, output(other_dir, "other")[:3000]
    assert "6 passed" in output(other_dir, "other")


HOLDER_SCRIPT = """
import sys, time
from hil.labgrid.session import LabSession
from hil.rack import Selector
session = LabSession.open(sys.argv[1], run="far", worker=None, owner_pid=None)
lease = session.manager.acquire(Selector(id=sys.argv[2]), timeout=30)
print("held", flush=True)
time.sleep(600)
"""


def test_a_holder_on_a_host_that_died_loses_its_place_within_the_bound(
    fresh: testlab.Lab, tmp_path: Path
) -> None:
    """A holder on another host (its own UTS namespace, another hostname) stops beating when it
    is killed; a waiting client takes the place back after the stale time, by heartbeat alone."""
    from hil.errors import LeaseTimeout
    from hil.labgrid.reclaim import RECLAIM_BOUND
    from hil.labgrid.session import LabSession
    from hil.rack import Selector

    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a second hostname (a UTS namespace)")
    board = fresh.boards[2]
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_SCRIPT)
    errors = tmp_path / "holder.err"
    with errors.open("wb") as stderr:
        far = subprocess.Popen(
            [
                *(unshare, "--uts", "sh", "-c", 'hostname elsewhere && exec "$@"', "sh"),
                *(sys.executable, str(script), fresh.address, board),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    try:
        line = read_line(far, 60, "the far holder to say it holds the place", errors)
        assert line.strip() == b"held", errors.read_text(errors="replace")[-2000:]
        assert held(fresh)[board].startswith("elsewhere/hil-")
        session = LabSession.open(fresh.address, run="near", worker=None, owner_pid=None)
        try:
            with pytest.raises(LeaseTimeout, match="held by elsewhere/hil-"):
                session.manager.acquire(Selector(id=board), timeout=3)  # never shared
            far.kill()
            far.wait(10)
            killed = time.monotonic()
            lease = session.manager.acquire(Selector(id=board), timeout=RECLAIM_BOUND + 10)
            took = time.monotonic() - killed
            assert took <= RECLAIM_BOUND, f"reclaimed after {took:.1f} s"
            lease.release()
        finally:
            session.close()
    finally:
        if far.poll() is None:
            far.kill()
            far.wait(10)


# --- what breaks mid-run ----------------------------------------------------------------------


def test_an_exporter_killed_mid_run_quarantines_its_boards_the_others_carry_on(
    fresh: testlab.Lab, runs: list[subprocess.Popen], tmp_path: Path
) -> None:
    slow_tests(tmp_path, 24, 1)
    proc = start_run(runs, fresh, tmp_path, ["-n", "4", "test_slow.py"], name="run")
    in_use = wait_until(lambda: (h := held(fresh)) and len(h) == 4 and h, 120, "4 places in use")
    # labgrid's scheduler picks the places: kill the host that serves most of those in use
    dead = max(fresh.hosts, key=lambda host: len(set(host.boards) & set(in_use)))
    dead.kill()
    assert proc.wait(300) == 1
    text = output(tmp_path)
    with fresh.session() as session:
        places = session.places()
    for board in dead.boards:
        if board in in_use:  # a board in use when its host died is quarantined for every run
            assert places[board].tags["hil"] == "quarantined", text[:3000]
            assert places[board].comment.startswith("hil quarantine: ")
    for host in fresh.hosts:
        if host is not dead:
            for board in host.boards:
                assert places[board].tags["hil"] == "ready"
    summary = text.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 18, summary  # at most the dead boards' tests in flight are lost
    assert not held(fresh)


def test_the_coordinator_killed_mid_run_ends_the_run_with_infrastructure_errors(
    runs: list[subprocess.Popen], tmp_path: Path
) -> None:
    lab = testlab.start_lab(tmp_path / "lab", hosts=1, boards_per_host=2)
    try:
        slow_tests(tmp_path, 30, 1)
        proc = start_run(runs, lab, tmp_path, ["-n", "2", "test_slow.py"], name="run")
        wait_until(lambda: len(held(lab)) == 2, 120, "two places in use")
        assert lab.coordinator is not None
        lab.coordinator.kill()
        lab.coordinator.wait(10)
        started = time.monotonic()
        returncode = proc.wait(120)  # nothing hangs
        assert time.monotonic() - started < 90
        text = output(tmp_path)
        assert returncode == 1, text[:3000]
        assert "infrastructure" in text
        assert "CoordinatorError" in text or "LinkError" in text
        # the coordinator comes back with its places; the exporters come back by themselves
        lab.start_coordinator()
        lab.wait_for_resources()
        slow_tests(tmp_path / "again", 6, 0.1)
        again = start_run(runs, lab, tmp_path / "again", ["-n", "2", "test_slow.py"], name="again")
        assert again.wait(300) == 0, output(tmp_path / "again", "again")[:3000]
    finally:
        lab.stop()


def test_bad_coordinator_address_is_a_usage_error_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(board):\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hil-labgrid", "nohost"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4
    assert "expected the coordinator as HOST:PORT, got 'nohost'" in done.stderr + done.stdout
