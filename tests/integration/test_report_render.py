"""Rendering with the real Allure 3 (Node's ``allure``, pinned in ci/package.json): no Java.

The results come from a real pytest run with allure-pytest, on a test file that uses the helpers
the way the plugin does and fails in each of the three ways the categories tell apart. The
rendered report's own data files are then checked: categories, steps, attachments, environment.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hil.cli import main as hil_main
from hil.report.render import find_tooling, installed

pytest.importorskip("allure_pytest", reason="allure-pytest (the 'report' extra) is not installed")

ALLURE = ["--alluredir", "results"]
TOOLING = find_tooling(Path(__file__).resolve().parent)
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not installed(TOOLING),
    reason=f"Allure 3 is not installed: run `npm ci --prefix {TOOLING}` (ci/render-report does)",
)

CONFTEST = """
import pytest
from hil.report import (
    attach_transcript, environment_properties, is_xdist_worker, label_board, results_dir,
    write_categories, write_environment,
)

@pytest.fixture
def dut():
    label_board("vb0", "unix", "/dev/pts/3", "v1.24.1-virtual")
    return "vb0"

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when == "teardown":
        attach_transcript(">>> import sys\\n... print(sys.platform)\\nlinux", "REPL session")
        attach_transcript("[ 0.001] -> <CTRL-A>\\n[ 0.004] <- raw REPL; CTRL-B to exit", "wire")

def pytest_sessionfinish(session):
    directory = results_dir(session.config)
    if directory and not is_xdist_worker(session.config):
        write_categories(directory)
        write_environment(
            directory, environment_properties(firmware={"vb0": "v1.24.1-virtual"}, rack=None)
        )
"""

TESTS = """
from hil.errors import BoardTimeout, RemoteError
from hil.report import exchange_step

def test_passes(dut):
    exchange_step("exec", b"import sys\\nprint(sys.platform)\\x04", b"OKlinux\\r\\n\\x04\\x04>",
                  0.02, dut)

def test_assertion_fails(dut):
    exchange_step("eval", b"1+1", b"2", 0.01, dut)
    assert 1 + 1 == 3

def test_board_raises(dut):
    error = RemoteError.from_traceback("NameError: name 'x' isn't defined\\r\\n", where=dut)
    exchange_step("exec", b"print(x)", b"NameError: name 'x' isn't defined\\r\\n", 0.01, dut,
                  error=error)
    raise error

def test_board_goes_silent(dut):
    exchange_step("exec", b"while True: pass", b"", 1.0, dut)
    raise BoardTimeout("no answer within 1.0 s", where=dut, tail=b"OK")
"""


@pytest.fixture(scope="module")
def allure_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("report-project")
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_board.py").write_text(TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:hil", "-p", "no:cacheprovider", *ALLURE],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "3 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    return project / "results"


@pytest.fixture(scope="module")
def report(allure_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered through the ``hil report`` command, as a user would."""
    output = tmp_path_factory.mktemp("report") / "allure-report"
    code = hil_main(
        ["report", "--results", str(allure_results), "--output", str(output), "--no-install"]
    )
    assert code == 0
    return output


#: One data file embedded in a single-file report: ``d("data/...", "<base64>")``.
EMBEDDED = re.compile(r'\bd\(("(?:data|widgets)/[^"]+"),("[A-Za-z0-9+/=]*")\)')


def report_files(report: Path) -> dict[str, bytes]:
    """The data files of a rendered report, by path: embedded in its single index.html
    (ci/allurerc.mjs asks for one file), or files under data/ and widgets/ when split."""
    if (report / "data").is_dir():
        return {
            p.relative_to(report).as_posix(): p.read_bytes()
            for folder in ("data", "widgets")
            for p in (report / folder).rglob("*.*")
        }
    html = (report / "index.html").read_text(encoding="utf-8")
    return {
        json.loads(name): base64.b64decode(json.loads(value))
        for name, value in EMBEDDED.findall(html)
    }


def rendered_tests(report: Path) -> dict[str, dict[str, Any]]:
    files = report_files(report)
    tests = [json.loads(v) for k, v in files.items() if k.startswith("data/test-results/")]
    return {t["name"]: t for t in tests}


def test_the_report_is_html_that_calls_nobody(report: Path) -> None:
    index = report / "index.html"
    assert index.is_file()
    html = index.read_text(encoding="utf-8")
    assert "<html" in html.lower()
    assert "gtag" not in html  # Allure 3's web analytics are stripped
    assert not (report / "data").exists()  # one self-contained file: opens from disk


def test_infrastructure_product_and_assertion_failures_land_apart(report: Path) -> None:
    tests = rendered_tests(report)
    categories = {name: [c["name"] for c in t.get("categories") or []] for name, t in tests.items()}
    assert categories == {
        "test_passes": [],
        "test_assertion_fails": ["Assertion failures"],
        "test_board_raises": ["Product defects"],
        "test_board_goes_silent": ["Infrastructure errors"],
    }


def test_steps_show_the_repl_and_tests_their_repl_session_and_wire(report: Path) -> None:
    test = rendered_tests(report)["test_passes"]
    steps = [s for s in test["steps"] if s["type"] == "step"]
    assert [s["name"] for s in steps] == ["exec: import sys (+1 line)"]
    assert steps[0]["duration"] == 20
    assert [a["link"]["name"] for a in steps[0]["steps"]] == ["REPL"]
    link = steps[0]["steps"][0]["link"]
    content = report_files(report)[f"data/attachments/{link['id']}{link['ext']}"]
    assert content.decode() == ">>> import sys\n... print(sys.platform)\nlinux"
    attachments = [s["link"] for s in test["steps"] if s["type"] == "attachment"]
    assert [a["name"] for a in attachments] == ["REPL session", "wire"]
    wire = report_files(report)[f"data/attachments/{attachments[1]['id']}{attachments[1]['ext']}"]
    assert "raw REPL; CTRL-B to exit" in wire.decode()


def test_a_second_rendering_shows_the_first_in_the_history(
    allure_results: Path, tmp_path: Path
) -> None:
    output = tmp_path / "allure-report"
    for _ in range(2):
        argv = ["report", "--results", str(allure_results), "--output", str(output)]
        assert hil_main([*argv, "--no-install"]) == 0
    history = (tmp_path / "allure-history.jsonl").read_text().splitlines()
    assert len(history) == 2  # one line per run: the trend has two points
    test = rendered_tests(output)["test_passes"]
    assert len(test["history"]) == 1  # the run before this one
    assert test["history"][0]["status"] == "passed"


def test_board_parameters_and_environment_are_shown(report: Path) -> None:
    test = rendered_tests(report)["test_passes"]
    parameters = {p["name"]: p for p in test["parameters"]}
    assert {"board", "platform", "port", "firmware"} <= set(parameters)
    assert all(parameters[n]["excluded"] for n in ("board", "platform", "port", "firmware"))
    environment = json.loads(report_files(report)["widgets/allure_environment.json"])
    values = {item["name"]: item["values"] for item in environment}
    assert values["firmware.vb0"] == ["v1.24.1-virtual"]
    assert "host" in values and "rack" in values


def test_rendering_replaces_an_old_report(allure_results: Path, tmp_path: Path) -> None:
    output = tmp_path / "allure-report"
    (output / "data").mkdir(parents=True)
    (output / "stale.txt").write_text("from an earlier run")
    code = hil_main(["report", "--results", str(allure_results), "--output", str(output)])
    assert code == 0
    assert not (output / "stale.txt").exists()
    assert (output / "index.html").is_file()
