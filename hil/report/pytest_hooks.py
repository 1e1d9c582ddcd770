"""The pytest plugin's reporting hooks: a test's transcript in its failure report and in Allure,
its board as labels, the run's environment and categories, the per-board summary at the end."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.errors import HilError
from hil.options import option
from hil.plugin_state import (
    BOARD_ID,
    SESSION,
    TRANSCRIPT_MARK,
    WORKER_BOARDS_KEY,
    WORKER_FIRMWARE_KEY,
)


def report_options(group: Any) -> None:
    """Without allure-pytest (the ``report`` extra), ``--alluredir`` still parses, so that
    ``pytest_configure`` can say in one line which extra to install."""
    from hil import extras

    if not extras.has_report():
        group.addoption(
            "--alluredir",
            dest="hil_alluredir_without_allure",
            default=None,
            help=f"(not available: {extras.report_missing()})",
        )


def check_report_options(config: pytest.Config) -> None:
    from hil import extras

    if getattr(config.option, "hil_alluredir_without_allure", None):
        raise pytest.UsageError(extras.report_missing())


def report_board(entry: Any, link: Any, harness: Any, facts: Any = None) -> Any:
    """Label the test with its board (Allure) and start its ``TestRecorder``: every REPL
    exchange and named action becomes a step; the board's time and free heap are measured."""
    from hil import report
    from hil.report.recorder import TestRecorder

    firmware = harness.firmware_version()  # once per board and session: for the summary too
    if report.is_active():
        # each test runs once per board (or group, whose parameter it then is): part of its
        # identity; port and firmware are not
        spread_by_group = harness.settings.spread == "group"
        report.label_board(
            entry.id,
            entry.platform,
            entry.port,
            firmware,
            board_in_history=True,
            group=entry.group_id if spread_by_group else None,
            capabilities=", ".join(sorted(harness.capabilities(entry))),
        )
        report.label_group(entry.group_id, harness.moved_from)
    recorder = TestRecorder(entry.id, link, facts)
    recorder.attach()
    return recorder


def finish_board(item: pytest.Item, recorder: Any) -> None:
    """After the test: what the board spent, as report parameters and for the summary."""
    recorder.detach()
    item.user_properties.extend(recorder.properties())
    recorder.report_parameters()


#: The folder of the ``hil`` package: its frames are ours, hidden from users' tracebacks.
_OWN = Path(__file__).resolve().parents[1]
#: How many lines of the REPL view a failure shows in the terminal.
TERMINAL_LINES = 40
#: Whether pytest is rendering the failure of a test on a board right now (in our
#: ``pytest_runtest_makereport``): only then are our frames hidden, so that a failure in our
#: own test suite, or outside a board test, keeps every frame.
_hiding = False


def _hidden_now(excinfo: object) -> bool:
    """The ``__tracebackhide__`` of our modules (pytest's public way to hide frames: it looks
    for the name in a frame's locals, then its module's globals, and calls it when callable)."""
    return _hiding


def _mark_own_modules(error: BaseException) -> None:
    """Give every module of ours with a frame in the failure's traceback, or in its causes',
    the ``__tracebackhide__`` above: our frames (``hil/board.py``, ``hil/repl.py``...) are
    hidden, the reader's code and the board's traceback (in the message and the REPL session)
    are what remain. Set here, from the traceback itself, rather than as a line in each module:
    every module a failure can pass through is covered, including ones added later; a module
    that sets its own ``__tracebackhide__`` keeps it. ``--full-trace`` still shows them all.
    When a failure has only our frames (a fixture of ours failed), pytest says that every entry
    is hidden and shows the error's one line, which names what, where and whose fault."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            if _ours_path(tb.tb_frame.f_code.co_filename):
                tb.tb_frame.f_globals.setdefault("__tracebackhide__", _hidden_now)
            tb = tb.tb_next
        current = current.__cause__ or current.__context__


def _drop_own_causes(error: BaseException) -> None:
    """An error of ours raised ``from`` another of ours inside mpy-hil (a ``BoardTimeout`` from
    the read that timed out) already says what its cause said: do not show the cause's frames
    (all ours) as a second traceback. A cause from anywhere else stays."""
    cause = error.__cause__ or error.__context__
    if not isinstance(error, HilError) or cause is None:
        return
    frames = list(_frames(cause.__traceback__))
    if frames and all(_ours_path(path) for path in frames):
        error.__cause__ = None
        error.__suppress_context__ = True


def _only_our_frames(error: BaseException) -> bool:
    """Whether every frame of the failure, pytest's and pluggy's aside, is in mpy-hil."""
    frames = [path for path in _frames(error.__traceback__) if not _pytest_internal(path)]
    return bool(frames) and all(_ours_path(path) for path in frames)


def _pytest_internal(path: str) -> bool:
    parts = Path(path).parts
    return "_pytest" in parts or "pluggy" in parts


def _frames(tb: Any) -> Iterator[str]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename
        tb = tb.tb_next


def _ours_path(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(_OWN)
    except (OSError, ValueError):
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    global _hiding
    board_id = item.stash.get(BOARD_ID, None)
    error = call.excinfo.value if board_id is not None and call.excinfo is not None else None
    if error is not None:
        _drop_own_causes(error)
        _mark_own_modules(error)
    _hiding = error is not None  # pytest renders the failure (the report's longrepr) in the yield
    try:
        outcome = yield
    finally:
        _hiding = False
    report: pytest.TestReport = outcome.get_result()
    if board_id is None:
        return
    if isinstance(error, HilError) and report.failed and _only_our_frames(error):
        # a fixture of ours could not give the test its board: the error's one line says what,
        # where and whose fault; frames of pytest and of ours would only bury it
        report.longrepr = str(error)
    report.user_properties.append(("hil_board", board_id))
    if call.excinfo is not None:
        report.user_properties.append(("hil_fault", fault_of(call.excinfo.value)))
    session = item.config.stash.get(SESSION, None)
    if session is None:
        return
    harness = session.harness
    if report.failed:  # what a failed test left on the board is no start for the next one
        harness.forget_reset()
    teardown = report.when == "teardown"
    if not (report.failed or (teardown and (harness.settings.log_dir or _allure_active()))):
        return  # nobody reads the transcript of this phase: do not render it
    from hil.replview import repl_view, tail

    entries = harness.transcript.entries(item.stash.get(TRANSCRIPT_MARK, 0))
    if not entries:
        return  # skipped before it touched a board: no session of its own
    view = repl_view(entries)
    if report.failed:
        rest = _whole_session(harness.settings.log_dir, item.nodeid)
        shown = tail(view, TERMINAL_LINES, rest=rest)
        report.sections.append((f"REPL session of board {board_id}", shown))
    if teardown:
        wire = harness.transcript.render(item.stash.get(TRANSCRIPT_MARK, 0))
        _write_log(harness.settings.log_dir, item.nodeid, view, wire)
        from hil import report as allure_report

        allure_report.attach_transcript(view, allure_report.REPL_NAME)
        allure_report.attach_transcript(wire, allure_report.WIRE_NAME)


def _allure_active() -> bool:
    from hil import report

    return report.is_active()


def fault_of(error: BaseException) -> str:
    """Whose fault a failure is: ``infrastructure``, ``product`` or ``usage`` for our errors,
    ``assertion`` for a test's own assertion, ``error`` for anything else the test raised."""
    if isinstance(error, HilError):
        return error.fault
    if isinstance(error, AssertionError):
        return "assertion"
    return "error"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Iterator[None]:
    """Fixture teardowns with names a person reads in the report (``board teardown``), and
    pytest's own bookkeeping finalizers out of it (allure-pytest names them ``board::1`` and
    ``board::<lambda>``)."""
    yield
    finalizers = getattr(fixturedef, "_finalizers", None)
    if not finalizers or not _allure_active():
        return
    for index, finalizer in enumerate(list(finalizers)):
        inner = getattr(finalizer, "_fixture_function", None)
        if inner is None or not hasattr(finalizer, "_name"):
            continue  # not wrapped by allure-pytest
        target = getattr(inner, "func", None)
        if getattr(target, "__name__", "") == "_teardown_yield_fixture":
            finalizer._name = f"{fixturedef.argname} teardown"
        else:
            finalizers[index] = inner  # pytest's bookkeeping: no step


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Per-run report files: written once, by the controller (xdist workers hand it their data)."""
    from hil import report

    config = session.config
    hil_session = config.stash.get(SESSION, None)
    if hil_session is None:
        return
    firmware = hil_session.firmware
    firmware.update(hil_session.harness.firmware)
    capabilities = hil_session.capabilities
    capabilities.update(hil_session.harness.capability_names())
    if report.is_xdist_worker(config):
        config.workeroutput[WORKER_FIRMWARE_KEY] = dict(firmware)  # type: ignore[attr-defined]
        config.workeroutput[WORKER_BOARDS_KEY] = dict(capabilities)  # type: ignore[attr-defined]
        return
    results = report.results_dir(config)
    if results is None:
        return
    report.write_categories(results)
    rack = option(config, "hil_rack") or option(config, "hil_port") or "virtual boards"
    properties = report.environment_properties(
        firmware=firmware, rack=rack, capabilities=capabilities
    )
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        from hil.summary import overview

        for board, line in overview(reporter.stats, firmware, capabilities).items():
            properties[f"board.{board}"] = line
    report.write_environment(results, properties)


def _write_log(log_dir: Path | None, nodeid: str, view: str, wire: str) -> None:
    """``<test>.txt``: the REPL session; ``<test>.wire.txt``: every byte, timed."""
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{_log_name(nodeid)}.txt").write_text(view + "\n")
    (log_dir / f"{_log_name(nodeid)}.wire.txt").write_text(wire + "\n")


def _log_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:180]


def _whole_session(log_dir: Path | None, nodeid: str) -> str:
    """Where the whole REPL session of a test is kept, for the terminal's shortened one: the
    report when Allure records, the ``--hil-log-dir`` file when one is written, else how to
    keep it."""
    places = ["the report's REPL session"] if _allure_active() else []
    if log_dir is not None:
        places.append(str(log_dir / f"{_log_name(nodeid)}.txt"))
    if not places:
        return "run with --alluredir or --hil-log-dir to keep the whole session"
    return "see " + " and ".join(places)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Per board: a table of outcomes, faults, board time and free heap; firmware,
    capabilities and skip reasons under it; failures by fault (they add up)."""
    from hil.summary import board_summary

    hil_session = config.stash.get(SESSION, None)
    capabilities = hil_session.capabilities if hil_session is not None else {}
    firmware = hil_session.firmware if hil_session is not None else {}
    width = shutil.get_terminal_size().columns  # as pytest fits its own lines (COLUMNS too)
    lines = board_summary(terminalreporter.stats, capabilities, firmware, width=width)
    if lines:
        terminalreporter.section("mpy-hil")
        for line in lines:
            terminalreporter.line(line)
