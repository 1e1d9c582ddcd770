"""pytest plugin of mpy-hil (the ``hil`` pytest11 entry point): options, markers, fixtures.

Where the boards come from, in order: ``--hil-rack FILE`` (a rack shared through leases),
``--hil-port PORT|auto`` (one bench board), else virtual boards (``--hil-sim N``, default one
per xdist worker) that the run starts on first use and stops at its end.

The rules of a session (leases, resets, health checks, quarantine) live in :mod:`hil.harness`;
this module only connects them to pytest.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil import drivers, extras, run_dirs
from hil.errors import BoardQuarantined, ConfigError, HilError
from hil.harness import RESET_MODES, RESET_SCOPES, Harness, Settings
from hil.options import OPTIONS, option
from hil.plugin_state import (
    BOARD_ID,
    OWNER_KEY,
    RUN_DIR_KEY,
    RUN_ID_KEY,
    SESSION,
    TRANSCRIPT_MARK,
    WORKER_BOARDS_KEY,
    WORKER_FIRMWARE_KEY,
)
from hil.rack import Board, Rack, Selector, load_rack

# The reporting hooks live with the report (pytest finds hooks by name in this module).
from hil.report.pytest_hooks import (
    check_report_options,
    finish_board,
    pytest_fixture_setup,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    report_board,
    report_options,
)
from hil.summary import NO_BOARD
from hil.transcript import CHECK

__all__ = [
    "pytest_fixture_setup",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "MicroPython hardware-in-the-loop")
    for declared in OPTIONS:
        group.addoption(declared.flag, dest=declared.name, default=None, help=declared.help)
        parser.addini(declared.name, declared.help, default=declared.default)
    report_options(group)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "board(platform=None, tags=(), capabilities=(), id=None): run on a matching board, "
        "or skip with the reason when the rack has none",
    )
    config.addinivalue_line(
        "markers",
        "reset(mode, scope=None): reset before this test: 'soft' (default), 'hard' or 'none'; "
        "scope 'test' (default), 'class' or 'module': reset once per class or file instead",
    )
    check_report_options(config)
    try:
        session = HilSession.from_config(config)
    except HilError as e:  # a bad rack, option, manifest, or an absent bench board: one line
        raise pytest.UsageError(str(e)) from None
    config.stash[SESSION] = session
    if session.owns_run_dir:  # a SIGTERM ends the run as Ctrl-C does: cleaned up
        session.sigterm.install()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "hil-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


class XdistHooks:
    """Hands the controller's run directory to each worker (so they share virtual boards)."""

    def __init__(self, session: HilSession) -> None:
        self.session = session

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_DIR_KEY] = str(self.session.run_dir)
        node.workerinput[RUN_ID_KEY] = self.session.run_id
        node.workerinput[OWNER_KEY] = os.getpid()
        if self.session.lab is not None:  # every worker collects the controller's places
            from hil.labgrid.session import PLACES_KEY

            node.workerinput[PLACES_KEY] = list(self.session.harness.rack.ids)

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        self.session.firmware.update(output.get(WORKER_FIRMWARE_KEY, {}))
        self.session.capabilities.update(output.get(WORKER_BOARDS_KEY, {}))

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Under the default ``--dist load``: a board's tests on one worker; a group's tests
        spread over as many workers as the group has boards."""
        if config.getvalue("dist") != "load":
            return None
        from hil.xdist_scheduling import BoardScheduling

        harness = self.session.harness
        return BoardScheduling(
            config, harness.rack.boards, log, reset_scope=harness.settings.reset_scope
        )


class HilSession:
    """Per-process state: where boards come from, and (lazily) the harness leasing them."""

    def __init__(
        self,
        config: pytest.Config,
        rack: Rack,
        *,
        run_dir: Path,
        run_id: str,
        owns_run_dir: bool,
        lock_dir: Path | None,
        settings: Settings,
        starter: Callable[[], None] | None = None,
        firmware_check: Callable[..., None] | None = None,
        probed: dict[str, object] | None = None,
        lab: Any = None,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.run_id = run_id
        self.owns_run_dir = owns_run_dir
        self.sigterm = run_dirs.SigtermAsInterrupt()
        #: firmware per board seen in this run (from all workers, on the controller)
        self.firmware: dict[str, str] = {}
        worker = getattr(config, "workerinput", {}).get("workerid")
        self.harness = Harness(
            rack,
            settings,
            lock_dir=lock_dir,
            run_id=run_id,
            worker=worker,
            starter=starter,
            firmware_check=firmware_check,
        )
        self.harness.facts.update(probed or {})
        #: boards leased as places of a labgrid coordinator (``hil.labgrid.session.LabSession``)
        self.lab = lab
        if lab is not None:
            self.harness.manager, self.harness.quarantine = lab.manager, lab.quarantine
        #: capabilities per board seen in this run, declared and probed (all workers' on the
        #: controller)
        self.capabilities: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: pytest.Config) -> HilSession:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and RUN_DIR_KEY in workerinput:
            run_dir, run_id, owns = Path(workerinput[RUN_DIR_KEY]), workerinput[RUN_ID_KEY], False
            owner = int(workerinput[OWNER_KEY])
        else:
            # created (private, naming its owner) only for virtual boards; runs that died
            # left theirs behind: gone now
            run_id, owns, owner = uuid.uuid4().hex[:12], True, os.getpid()
            run_dir = run_dirs.path_for(run_id)
            run_dirs.prune_stale()
        from hil import options

        drivers.import_modules(options.driver_modules(config))  # before the rack names them
        settings = options.settings(config)
        rack_file, port = option(config, "hil_rack"), option(config, "hil_port")
        worker_id = (workerinput or {}).get("workerid")
        lock_dir: Path | None = None
        starter: Callable[[], None] | None = None
        probed: dict[str, object] = {}
        # The rack is known before collection (tests are parametrized by its boards), so a bad
        # rack file or an absent bench board stops the run at once, with one line.
        lab = None
        if option(config, "hil_labgrid"):
            from hil.labgrid.session import PLACES_KEY, LabSession

            names = (workerinput or {}).get(PLACES_KEY)
            lab = LabSession.open(
                option(config, "hil_labgrid"),
                run=run_id,
                worker=worker_id,
                owner_pid=owner,
                names=names,
            )
            rack, lock_dir = lab.rack, run_dir / "locks"
        elif rack_file:
            rack = load_rack(rack_file)
        elif port:
            from hil.bench import bench_rack

            rack, facts = bench_rack(
                port,
                name=option(config, "hil_board_name"),
                sd=options.sd_slot(option(config, "hil_sd")),
            )
            probed = {rack.boards[0].id: facts}
        else:
            from hil.sim import pool

            count, kind = options.sim_count(config), option(config, "hil_sim_kind") or "unix"
            baud = options.sim_baud(config)
            extras.require_sim(kind)  # one line naming the extra, not an error in every test
            if owns:
                run_dirs.create(run_dir, owner)
            lock_dir = run_dir / "locks"
            # the suite's pin is for the unix kind's firmware slot: other kinds run their own
            firmware = (
                option(config, "hil_sim_firmware") if pool.kind_entry(kind).flashable else None
            )
            rack = pool.sim_rack(run_dir / "sim", count, lock_dir, firmware=firmware, kind=kind)

            def starter() -> None:
                pool.ensure_started(run_dir / "sim", count, owner, kind=kind, baud=baud)

        return cls(
            config,
            rack,
            run_dir=run_dir,
            run_id=run_id,
            owns_run_dir=owns,
            lock_dir=lock_dir,
            settings=settings,
            starter=starter,
            firmware_check=_firmware_check(config, rack),
            probed=probed,
            lab=lab,
        )

    def close(self) -> None:
        self.sigterm.uninstall()
        self.harness.close()
        if self.lab is not None:
            self.lab.close()
        if self.owns_run_dir:
            if (self.run_dir / "sim").exists():
                from hil.sim.pool import stop

                stop(self.run_dir / "sim")
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _firmware_check(config: pytest.Config, rack: Rack) -> Callable[..., None] | None:
    """What the harness runs once per leased board: flash it onto its pin when needed.

    The manifest is a setting of the run, checked now: a missing or bad one is a usage error,
    not a fault of each board.
    """
    from hil.flash.manifest import load_manifest
    from hil.flash.session import MODES, ensure_firmware

    mode = option(config, "hil_flash") or "auto"
    if mode not in MODES:
        raise ConfigError(f"--hil-flash must be one of {', '.join(MODES)}, not {mode!r}")
    pinned = sorted({b.firmware for b in rack.boards if b.firmware})
    if mode == "never" or not pinned:
        return None
    path = option(config, "hil_firmware_manifest")
    manifest_file = Path(path) if path else config.rootpath / "firmware" / "manifest.toml"
    if not manifest_file.exists():
        raise ConfigError(
            f"boards are pinned to firmware {', '.join(pinned)} but there is no manifest "
            f"{manifest_file} (--hil-firmware-manifest)"
        )
    manifest = load_manifest(manifest_file)
    for firmware in pinned:
        manifest.get(firmware, where=str(manifest_file))

    def check(entry: Board, open_board: Callable[[], Any]) -> None:
        ensure_firmware(entry, manifest, mode=mode, open_board=open_board)  # type: ignore[arg-type]

    return check


# --- markers and fixtures ---------------------------------------------------------------------


def _selector(item: pytest.Item) -> Selector:
    marker = item.get_closest_marker("board")
    if marker is None:
        return Selector()
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("platform", marker.args[0])
    try:
        return Selector(
            platform=kwargs.get("platform"),
            tags=frozenset(kwargs.get("tags", ())),
            capabilities=frozenset(kwargs.get("capabilities", ())),
            id=kwargs.get("id"),
        )
    except (ConfigError, ValueError) as e:
        raise pytest.UsageError(f"{item.nodeid}: bad @pytest.mark.board: {e}") from None


def _reset_mode(item: pytest.Item, settings: Settings) -> tuple[str, str | None]:
    """The reset before this test, and the unit it is for (None: this test alone).

    ``@pytest.mark.reset(mode, scope=...)`` overrides ``--hil-reset`` and ``--hil-reset-scope``;
    a class or file scope resets at the first test of the class or file on the board.
    """
    marker = item.get_closest_marker("reset")
    mode = marker.args[0] if marker and marker.args else settings.reset
    if mode not in RESET_MODES:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.reset({mode!r}): use soft, hard or none"
        )
    scope = (marker.kwargs.get("scope") if marker else None) or settings.reset_scope
    if scope not in RESET_SCOPES:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.reset(scope={scope!r}): use test, class or module"
        )
    module = item.nodeid.split("::")[0]
    cls = getattr(item, "cls", None)
    unit = {
        "test": None,
        "module": module,
        "class": f"{module}::{cls.__qualname__}" if cls is not None else module,
    }[scope]
    return mode, unit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses a board runs once per group of equivalent boards that matches it (on
    whichever board of the group is free), or with ``--hil-spread board`` once on every one."""
    if "board" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION]
    selector = _selector(metafunc.definition)
    boards = selector.select(session.harness.rack.boards)
    if not boards:
        reason = session.harness.skip_reason(selector)
        metafunc.parametrize(
            "board",
            [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
            ids=["no-board"],
            indirect=True,
        )
        return
    if session.harness.settings.spread == "group":  # the param names a group, else a board
        targets = list(dict.fromkeys(b.group_id for b in boards))
    else:
        targets = [b.id for b in boards]
    metafunc.parametrize("board", targets, ids=targets, indirect=True)


@pytest.fixture(scope="session")
def hil_rack(request: pytest.FixtureRequest) -> Rack:
    """The rack this run leases boards from (a file, the bench board, or the virtual boards)."""
    return request.config.stash[SESSION].harness.rack


@pytest.fixture
def board(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The leased board (``hil.board.Board``), reset as the test asks, checked afterwards.

    A test whose marker asks for a capability that the board neither declares nor has (by its
    probe) is skipped, naming the board and what it lacks.
    """
    harness = request.config.stash[SESSION].harness
    item = request.node
    name = getattr(request, "param", None)
    kind = "group" if harness.settings.spread == "group" else "id"
    wanted = _selector(item)
    selector = wanted.narrowed(**{kind: name}) if name else wanted
    reason = harness.skip_reason(selector)
    if reason:
        pytest.skip(reason)
    # counted and transcribed under its board even if it never gets it
    item.stash[TRANSCRIPT_MARK] = harness.transcript.mark()
    if name and kind == "id":
        item.stash[BOARD_ID] = name
    try:
        entry, link = harness.board_for(selector)
    except HilError as e:
        harness.transcript.note(f"not run: {item.nodeid}: no board: {e.what}")
        item.stash[BOARD_ID] = harness.last_board or item.stash.get(BOARD_ID, NO_BOARD)
        record = harness.quarantine.get(harness.last_board) if harness.last_board else None
        if isinstance(e, BoardQuarantined) and record is not None:
            item.user_properties.append(("hil_quarantined", record.reason))
        raise
    item.stash[BOARD_ID] = entry.id
    item.user_properties.append(("hil_group", entry.group_id))
    if harness.moved_from is not None:  # its board was quarantined: not silently elsewhere
        item.user_properties.append(("hil_moved_from", harness.moved_from))
    facts = harness.board_facts()
    lacking = wanted.mismatch(entry, probed=facts.features)
    if lacking:  # its session: the lease and the probe, if this test made them
        pytest.skip(f"{entry.id}: {lacking}")
    item.stash[TRANSCRIPT_MARK] = harness.transcript.mark()  # its session starts here
    harness.transcript.note(f"test: {item.nodeid}")
    recorder = report_board(entry, link, harness, facts)
    mode, unit = _reset_mode(item, harness.settings)
    harness.prepare(mode, unit)
    recorder.start()
    yield link
    recorder.stop()
    quarantined = None
    if recorder.heap_after is None:  # else the board just answered: it is healthy
        with link.transcript.action("health check", mode=CHECK):
            quarantined = harness.check_health()
    finish_board(item, recorder)
    if quarantined:
        item.user_properties.append(("hil_quarantined", quarantined))


@pytest.fixture
def hil_board_entry(request: pytest.FixtureRequest, board: Any) -> Board:
    """The rack entry of the leased board (platform, capabilities such as its SD slot)."""
    entry = request.config.stash[SESSION].harness.entry
    assert entry is not None
    return entry


@pytest.fixture
def repl(board: Any) -> Any:
    """The friendly REPL of the leased board, for transcript-style tests (``repl.play(...)``)."""
    return board
