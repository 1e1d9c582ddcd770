"""What the helpers write into Allure results, checked in the JSON that allure-pytest produces.

Each case runs pytest in a subprocess on a tiny test file that calls the helpers the way the
plugin does, with ``--alluredir``: allure-commons keeps its listeners in a process-wide plugin
manager, so an in-process run would also feed an outer run's report (and vice versa).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("allure_pytest", reason="allure-pytest (the 'report' extra) is not installed")

CONFTEST = """
import os
import pytest
from hil.report import attach_transcript, label_board

@pytest.fixture
def dut():
    label_board(os.environ.get("BOARD", "vb0"), "unix", "/dev/pts/7", "v1.24.1")
    return os.environ.get("BOARD", "vb0")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when == "teardown":  # after every fixture's teardown: the whole transcript
        attach_transcript("[   0.001] -> <CTRL-A>\\n[   0.002] <- raw REPL; CTRL-B to exit")
"""

TESTS = """
from hil.errors import RemoteError
from hil.report import exchange_step, is_active

# what the REPL driver sends and gets for board.exec(...) and board.eval("1+1") (raw-paste)
def test_exchanges(dut):
    exchange_step("exec: import sys", b"\\x05A\\x01import sys\\nprint(sys.platform)\\n\\x04",
                  b"R\\x01\\x80\\x00\\x01\\x04linux\\r\\n\\x04\\x04>", 0.25, dut)
    exchange_step("exec: print(repr(1+1))", b"\\x05A\\x01print(repr(1+1))\\x04",
                  b"R\\x01\\x80\\x00\\x01\\x042\\r\\n\\x04\\x04>", 0.004, dut)

def test_remote_error(dut):
    error = RemoteError("NameError", "name 'x' isn't defined", "NameError: ...", where=dut)
    exchange_step("exec", b"print(x)", b"NameError: name 'x' isn't defined\\r\\n", 0.01, dut,
                  error=error)

def test_reporting_state():
    print("ACTIVE" if is_active() else "INACTIVE")
"""


def run_pytest(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """pytest in a subprocess, without this project's plugin (these helpers stand alone)."""
    command = [sys.executable, "-m", "pytest", "-p", "no:hil", "-p", "no:cacheprovider", *args]
    return subprocess.run(
        command,
        cwd=directory,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def results_by_name(results: Path) -> dict[str, dict[str, Any]]:
    tests = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return {t["name"]: t for t in tests}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("allure-project")
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_board.py").write_text(TESTS)
    return directory


@pytest.fixture(scope="module")
def recorded(project: Path) -> dict[str, dict[str, Any]]:
    """One run with ``--alluredir``: the results by test name, and the attachments' folder."""
    done = run_pytest(project, "--alluredir", "results", "-s")
    assert "3 passed" in done.stdout, done.stdout + done.stderr
    assert "ACTIVE" in done.stdout and "INACTIVE" not in done.stdout
    return results_by_name(project / "results")


def attachment_text(project: Path, attachment: dict[str, Any]) -> str:
    return (project / "results" / attachment["source"]).read_text(encoding="utf-8")


def test_each_exchange_is_a_step_titled_by_what_it_did_with_its_repl_view(
    project: Path, recorded: dict[str, dict[str, Any]]
) -> None:
    steps = recorded["test_exchanges"]["steps"]
    # the protocol's framing (\\x05A\\x01) is not in the title; an eval shows its expression
    assert [s["name"] for s in steps] == ["exec: import sys (+1 line)", "eval: 1+1"]
    exec_step = steps[0]
    assert exec_step["status"] == "passed"
    assert {p["name"]: p["value"] for p in exec_step["parameters"]} == {"duration": "250.0 ms"}
    (repl,) = exec_step["attachments"]
    assert repl["name"] == "REPL"
    assert repl["type"] == "text/plain"
    assert attachment_text(project, repl) == ">>> import sys\n... print(sys.platform)\nlinux"
    assert attachment_text(project, steps[1]["attachments"][0]) == ">>> 1+1\n2"


def test_a_step_spans_the_time_the_exchange_took(recorded: dict[str, dict[str, Any]]) -> None:
    exec_step, eval_step = recorded["test_exchanges"]["steps"]
    assert exec_step["stop"] - exec_step["start"] == 250
    assert eval_step["stop"] - eval_step["start"] == 4


def test_an_exchange_that_raised_is_a_broken_step_with_the_error(
    recorded: dict[str, dict[str, Any]],
) -> None:
    (step,) = recorded["test_remote_error"]["steps"]
    assert step["status"] == "broken"
    assert "the board raised NameError" in step["statusDetails"]["message"]
    assert "[product fault]" in step["statusDetails"]["message"]


def test_the_transcript_is_attached_to_the_test(
    project: Path, recorded: dict[str, dict[str, Any]]
) -> None:
    for name in ("test_exchanges", "test_remote_error"):
        (transcript,) = recorded[name]["attachments"]
        assert transcript["name"] == "transcript"
        assert "raw REPL; CTRL-B to exit" in attachment_text(project, transcript)


def test_board_labels_and_parameters_name_the_board(recorded: dict[str, dict[str, Any]]) -> None:
    test = recorded["test_exchanges"]
    labels = {(label["name"], label["value"]) for label in test["labels"]}
    assert {
        ("board", "vb0"),
        ("platform", "unix"),
        ("port", "/dev/pts/7"),
        ("firmware", "v1.24.1"),
        ("tag", "unix"),
    } <= labels
    parameters = {p["name"]: p for p in test["parameters"]}
    assert set(parameters) == {"board", "platform", "port", "firmware"}
    assert all(p["excluded"] is True for p in parameters.values())
    # values as they are, not as allure-commons' represent() quotes a string ('vb0')
    assert {n: p["value"] for n, p in parameters.items()} == {
        "board": "vb0",
        "platform": "unix",
        "port": "/dev/pts/7",
        "firmware": "v1.24.1",
    }


def test_history_follows_a_test_across_boards(project: Path, tmp_path: Path) -> None:
    """The board parameters are excluded from the history id: same test, other board, same id."""
    histories = []
    for board in ("esp32-a", "pico-b"):
        out = tmp_path / board
        run_pytest(project, "--alluredir", str(out), "-k", "exchanges", env={"BOARD": board})
        (test,) = results_by_name(out).values()
        assert {"name": "board", "value": board} in test["labels"]
        histories.append(test["historyId"])
    assert histories[0] == histories[1]


def test_without_alluredir_the_helpers_do_nothing(project: Path) -> None:
    done = run_pytest(project, "-s")
    assert "INACTIVE" in done.stdout, done.stdout
    assert "3 passed" in done.stdout, done.stdout + done.stderr
    assert not (project / "allure-results").exists()


def test_inactive_helpers_do_no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off is off: no rendering of bytes, so a REPL listener costs one hook lookup per exchange."""
    from hil.report import steps

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered bytes although Allure is not recording")

    monkeypatch.setattr(steps, "is_active", lambda: False)
    monkeypatch.setattr(steps, "readable", must_not_run)
    monkeypatch.setattr(steps, "_safely", must_not_run)
    steps.exchange_step("exec", b"print(1)", b"1\r\n", 0.01, "vb0")
    steps.attach_transcript("transcript")
    steps.label_board("vb0", "unix", "/dev/pts/1", "v1")


def test_a_failure_to_record_never_fails_the_test(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hil.report import steps

    def broken_recorder(*args: object) -> None:
        raise RuntimeError("no current test")

    monkeypatch.setattr(steps, "is_active", lambda: True)
    monkeypatch.setattr(steps, "_record_exchange", broken_recorder)
    steps.exchange_step("exec", b"print(1)", b"1\r\n", 0.01, "vb0")
    assert "could not record the step in Allure" in caplog.text


SPREAD_CONFTEST = """
import os
import pytest
from hil.report import label_board
from hil.report.steps import add_parameter

@pytest.fixture
def board(request):
    # as the hil plugin does: the parametrization names a group (--hil-spread group) or a board
    spread = os.environ["SPREAD"]
    label_board(os.environ["BOARD"], "unix", "/dev/pts/7", "v1", board_in_history=True,
                group=request.param if spread == "group" else None, capabilities="sd, vfs")
    add_parameter("board time", "0.132 s")
    return request.param
"""

SPREAD_TESTS = """
import os
import pytest

@pytest.mark.parametrize("board", [os.environ["TARGET"]], indirect=True)
def test_on_a_board(board):
    pass
"""


def spread_run(directory: Path, spread: str, target: str, board: str) -> dict[str, Any]:
    out = directory / f"results-{spread}-{board}"
    env = {"SPREAD": spread, "TARGET": target, "BOARD": board}
    done = run_pytest(directory, "--alluredir", str(out), env=env)
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    (test,) = results_by_name(out).values()
    return test


@pytest.fixture(scope="module")
def spread_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("allure-spread")
    (directory / "conftest.py").write_text(SPREAD_CONFTEST)
    (directory / "test_spread.py").write_text(SPREAD_TESTS)
    return directory


def test_a_group_parameter_is_named_group_and_keeps_history_per_group(
    spread_project: Path,
) -> None:
    from allure_commons.utils import md5

    runs = [spread_run(spread_project, "group", "unix+sd", board) for board in ("vb0", "vb1")]
    for test, board in zip(runs, ("vb0", "vb1"), strict=True):
        parameters = {p["name"]: (p["value"], p.get("excluded")) for p in test["parameters"]}
        assert parameters == {
            "group": ("unix+sd", None),  # in the history id
            "board": (board, True),  # the board it ran on, as its label says
            "platform": ("unix", True),
            "port": ("/dev/pts/7", True),
            "firmware": ("v1", True),
            "capabilities": ("sd, vfs", True),
            "board time": ("0.132 s", True),
        }
        assert {"name": "board", "value": board} in test["labels"]
    # one history per group, whichever board ran it: the id the group's value always gave
    assert runs[0]["historyId"] == runs[1]["historyId"]
    assert runs[0]["historyId"] == md5(runs[0]["fullName"], "unix+sd")


def test_a_board_parameter_names_the_board_and_keeps_history_per_board(
    spread_project: Path,
) -> None:
    from allure_commons.utils import md5

    test = spread_run(spread_project, "board", "vb1", "vb1")
    parameters = {p["name"]: (p["value"], p.get("excluded")) for p in test["parameters"]}
    assert parameters["board"] == ("vb1", None) and "group" not in parameters
    assert parameters["board time"] == ("0.132 s", True)
    assert test["historyId"] == md5(test["fullName"], "vb1")
