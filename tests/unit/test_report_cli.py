"""``hil report`` fails in one line that says what is missing, before running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.cli import main as hil_main
from hil.report.render import find_tooling


def test_no_results_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = hil_main(["report", "--results", str(tmp_path / "nothing"), "--output", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no Allure results" in err and "--alluredir" in err and "nothing" in err


def test_a_wrong_tooling_folder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "0-result.json").write_text("{}")
    monkeypatch.setenv("HIL_REPORT_TOOLING", str(tmp_path))
    code = hil_main(["report", "--results", str(results), "--output", str(tmp_path / "out")])
    assert code == 2
    assert f"HIL_REPORT_TOOLING={tmp_path}" in capsys.readouterr().err


def test_the_tooling_is_found_from_anywhere_in_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HIL_REPORT_TOOLING", raising=False)
    ci = Path(__file__).resolve().parents[2] / "ci"
    assert find_tooling(ci.parent / "tests" / "unit") == ci
    assert find_tooling(Path("/")) == ci  # beside the hil package of an editable install
    assert (ci / "package.json").is_file() and (ci / "allurerc.mjs").is_file()
