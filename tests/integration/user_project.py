"""A user's project run by pytest in a subprocess, the way a user runs it, and what it left in
its Allure results: shared by the tests that read the terminal or the report as a person would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_pytest(
    project: Path, *args: str, columns: int = 100, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``pytest`` in ``project`` at a terminal ``columns`` wide; the outer run's own pytest
    variables (an xdist worker's) are not passed on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "COLUMNS": str(columns)},
        check=False,
    )


def allure_results(project: Path, directory: str = "results") -> dict[str, dict[str, Any]]:
    """The run's Allure test results by test name (without its parameters)."""
    found = [json.loads(p.read_text()) for p in (project / directory).glob("*-result.json")]
    return {t["name"].split("[")[0]: t for t in found}


def attachment(
    project: Path, result: dict[str, Any], name: str, directory: str = "results"
) -> str | None:
    """The text of a test result's attachment called ``name``, None when it has none."""
    found = [a for a in result.get("attachments", []) if a["name"] == name]
    return (project / directory / found[0]["source"]).read_text() if found else None
