"""The pytest plugin's reporting hooks: a test's transcript in its failure report and in Allure,
its board as labels, the run's environment and categories, the per-board summary at the end."""

from __future__ import annotations

import re
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


def report_board(entry: Any, link: Any, harness: Any) -> None:
    """Allure: label the test with its board; every REPL exchange becomes a step."""
    from hil import report

    if not report.is_active():
        link.repl.observers = []
        return
    # each test runs once per board: the board is part of its identity, port/firmware are not
    report.label_board(
        entry.id,
        entry.platform,
        entry.port,
        harness.firmware_version(),
        board_in_history=True,
        capabilities=", ".join(sorted(harness.capabilities(entry))),
    )

    def step(exchange: Any) -> None:
        report.exchange_step(
            exchange.title,
            exchange.sent,
            exchange.received,
            exchange.seconds,
            entry.id,
            error=exchange.error,
        )

    link.repl.observers = [step]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    board_id = item.stash.get(BOARD_ID, None)
    if board_id is None:
        return
    report.user_properties.append(("hil_board", board_id))
    if call.excinfo is not None and isinstance(call.excinfo.value, HilError):
        report.user_properties.append(("hil_fault", call.excinfo.value.fault))
    session = item.config.stash.get(SESSION, None)
    if session is None:
        return
    harness = session.harness
    teardown = report.when == "teardown"
    if not (report.failed or (teardown and (harness.settings.log_dir or _allure_active()))):
        return  # nobody reads the transcript of this phase: do not render it
    text = harness.transcript.render(item.stash.get(TRANSCRIPT_MARK, 0))
    if report.failed:
        report.sections.append((f"hil transcript of board {board_id}", text))
    if teardown:
        _write_log(harness.settings.log_dir, item.nodeid, text)
        from hil import report as allure_report

        allure_report.attach_transcript(text)


def _allure_active() -> bool:
    from hil import report

    return report.is_active()


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
    report.write_environment(
        results,
        report.environment_properties(firmware=firmware, rack=rack, capabilities=capabilities),
    )


def _write_log(log_dir: Path | None, nodeid: str, text: str) -> None:
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:180]
    (log_dir / f"{name}.txt").write_text(text + "\n")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Per board: how many tests ran and why the others were skipped; failures by fault."""
    from hil.summary import board_summary

    hil_session = config.stash.get(SESSION, None)
    capabilities = hil_session.capabilities if hil_session is not None else {}
    lines = board_summary(terminalreporter.stats, capabilities)
    if lines:
        terminalreporter.section("mpy-hil")
        for line in lines:
            terminalreporter.line(line)
