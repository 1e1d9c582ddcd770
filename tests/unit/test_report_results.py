"""The per-run files: categories that keep whose fault a failure is apart, and the environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hil.errors import BoardTimeout, ConfigError, LeaseTimeout, LinkError, RemoteError
from hil.report import (
    CATEGORIES,
    environment_properties,
    is_xdist_worker,
    results_dir,
    write_categories,
    write_environment,
)

CI = Path(__file__).resolve().parents[2] / "ci"


def message_of(error: BaseException) -> str:
    """The message allure-pytest records for a test that raised ``error`` (``exconly()``)."""
    with pytest.raises(type(error)) as raised:
        raise error
    return raised.exconly()


def categories_of(message: str, status: str) -> list[str]:
    """Every category a result matches, with Allure 2's whole-message semantics."""
    return [
        c["name"]
        for c in CATEGORIES
        if status in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)
    ]


def first_category_searching(message: str, status: str) -> str | None:
    """The category Allure 3 picks: the first whose regex *searches* successfully."""
    for c in CATEGORIES:
        if status in c["matchedStatuses"] and re.search(c["messageRegex"], message):
            return c["name"]
    return None


CASES = [
    (LinkError("port vanished", where="/dev/ttyACM0"), "broken", "Infrastructure errors"),
    (BoardTimeout("no prompt", where="vb0", tail=b"x\r\n" * 40), "broken", "Infrastructure errors"),
    (LeaseTimeout("no free esp32 within 60 s"), "broken", "Infrastructure errors"),
    (
        RemoteError("NameError", "name 'x' isn't defined", "...", where="vb0"),
        "broken",
        "Product defects",
    ),
    (AssertionError("assert 1 == 2\n +  where 1 = f()"), "failed", "Assertion failures"),
    (ConfigError("unknown power driver 'relay'", where="rack.toml"), "broken", "Usage errors"),
    # A plugin may turn a product failure into a test failure (pytest.fail): still the product's.
    (
        AssertionError("vb0: the board raised OSError: 5 [product fault]"),
        "failed",
        "Product defects",
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "category"), CASES, ids=[type(e).__name__ for e, _, _ in CASES]
)
def test_each_failure_lands_in_exactly_one_category(
    error: BaseException, status: str, category: str
) -> None:
    message = message_of(error)
    assert categories_of(message, status) == [category]  # Allure 2: every match counts
    assert first_category_searching(message, status) == category  # Allure 3: first match


def test_a_passed_or_skipped_test_is_in_no_category() -> None:
    for status in ("passed", "skipped"):
        assert categories_of("AssertionError: [infrastructure fault]", status) == []


def test_categories_json_is_written_as_is(tmp_path: Path) -> None:
    path = write_categories(tmp_path / "new" / "results")
    assert path == tmp_path / "new" / "results" / "categories.json"
    assert json.loads(path.read_text()) == CATEGORIES
    assert {"Infrastructure errors", "Product defects", "Usage errors", "Assertion failures"} == {
        c["name"] for c in CATEGORIES
    }


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js) is not installed")
def test_the_allure3_config_has_the_same_categories() -> None:
    """Allure 3 reads categories from ci/allurerc.mjs only: it must not drift from ours."""
    script = (
        "const m = await import(process.argv[1]);"
        "process.stdout.write(JSON.stringify({named: m.categories, used: m.default.categories}));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, (CI / "allurerc.mjs").as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config = json.loads(done.stdout)
    assert config["named"] == CATEGORIES
    assert config["used"] == CATEGORIES


def test_environment_names_firmware_per_board_rack_and_host() -> None:
    properties = environment_properties(
        firmware={"pico-b": "v1.24.1", "esp32-a": "v1.23.0", "stm32-c": None},
        rack="/etc/mpy-hil/rack.toml",
        host="bench-3",
    )
    assert properties["host"] == "bench-3"
    assert properties["rack"] == "/etc/mpy-hil/rack.toml"
    assert properties["firmware.esp32-a"] == "v1.23.0"
    assert properties["firmware.pico-b"] == "v1.24.1"
    assert properties["firmware.stm32-c"] == "unknown"
    assert {"python", "mpy-hil"} <= set(properties)
    assert environment_properties(firmware={}, rack=None)["host"]  # defaults to this host


def test_environment_properties_file_is_escaped_java_properties(tmp_path: Path) -> None:
    path = write_environment(
        tmp_path,
        {
            "rack": "C:\\racks\\lab=1.toml",
            "note": "two\nlines",
            "firmware.vb 0": "v1.24 µ",
            "b": " leading blank",
            "a": 3,
        },
    )
    assert path.read_text(encoding="utf-8").splitlines() == [
        "a=3",
        "b=\\ leading blank",
        "firmware.vb\\ 0=v1.24 \\u00b5",
        "note=two\\nlines",
        "rack=C\\:\\\\racks\\\\lab\\=1.toml",
    ]


def test_xdist_worker_is_told_apart_from_the_controller() -> None:
    assert is_xdist_worker(SimpleNamespace(workerinput={"workerid": "gw0"})) is True
    assert is_xdist_worker(SimpleNamespace(option=SimpleNamespace())) is False


def test_results_dir_is_the_alluredir_option() -> None:
    assert results_dir(SimpleNamespace(option=SimpleNamespace(allure_report_dir="out"))) == Path(
        "out"
    )
    assert results_dir(SimpleNamespace(option=SimpleNamespace(allure_report_dir=None))) is None
    assert results_dir(SimpleNamespace(option=SimpleNamespace())) is None


XDIST_ALLURE = ["-n", "2", "--alluredir", "results"]
SINGLE_WRITER_CONFTEST = """
import os
from hil.report import (
    environment_properties, is_xdist_worker, results_dir, write_categories, write_environment,
)

def pytest_sessionfinish(session):
    worker = is_xdist_worker(session.config)
    with open(os.environ["WRITERS_LOG"], "a") as log:
        log.write(f"{'worker' if worker else 'controller'}\\n")
    directory = results_dir(session.config)
    if directory and not worker:
        write_categories(directory)
        write_environment(directory, environment_properties(firmware={}, rack=None))
"""


def test_only_the_xdist_controller_writes_the_run_files(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    pytest.importorskip("allure_pytest")
    (tmp_path / "conftest.py").write_text(SINGLE_WRITER_CONFTEST)
    (tmp_path / "test_many.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('n', range(4))\n"
        "def test_n(n):\n    assert n >= 0\n"
    )
    log = tmp_path / "writers.log"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:hil", "-p", "no:cacheprovider", *XDIST_ALLURE],
        cwd=tmp_path,
        env={**os.environ, "WRITERS_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "4 passed" in done.stdout, done.stdout + done.stderr
    assert sorted(log.read_text().split()) == ["controller", "worker", "worker"]
    assert (tmp_path / "results" / "categories.json").is_file()
    assert (tmp_path / "results" / "environment.properties").is_file()


def test_a_second_run_into_the_same_results_keeps_the_first_runs_boards(tmp_path: Path) -> None:
    first = environment_properties(firmware={"vb0": "v1.29.0"}, rack=None, host="h")
    second = environment_properties(
        firmware={"microbit-vb0": "v1.9.2"},
        rack=None,
        host="h",
        capabilities={"microbit-vb0": "gc"},
    )
    write_environment(tmp_path, first)
    path = write_environment(tmp_path, second)

    lines = path.read_text().splitlines()
    assert "firmware.vb0=v1.29.0" in lines
    assert "firmware.microbit-vb0=v1.9.2" in lines
    assert "capabilities.microbit-vb0=gc" in lines
    assert sum(line.startswith("host=") for line in lines) == 1
