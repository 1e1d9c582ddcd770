"""``hil report`` from a non-editable install, outside any checkout, on a fresh user account.

The package is laid out as a wheel would install it (its Python modules and the package data that
``pyproject.toml`` declares; building a real wheel would fetch setuptools, and tests read no
network) in a folder of its own; Python runs without its
site hooks (so the editable install of this checkout is not seen), from a directory with no
``ci/`` above it, with an empty cache folder: the packaged tooling is copied there and its
pinned modules installed with npm (offline, from npm's cache: tests read no network).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
RESULT = """{"uuid": "1", "name": "test_x", "fullName": "t.test_x", "status": "passed",
"start": 1, "stop": 2, "historyId": "h1", "steps": [], "attachments": [], "labels": []}"""

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hil/`` as installed from a wheel: ``*.py`` and the declared package data, no more."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]
    site = tmp_path_factory.mktemp("site")
    for path in (ROOT / "hil").rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(ROOT)
        package = ".".join(relative.parent.parts)
        declared = [
            pattern
            for name, patterns in data.items()
            if package == name or package.startswith(name + ".")
            for pattern in patterns
        ]
        inside = [
            path.relative_to(ROOT.joinpath(*name.split("."))).as_posix()
            for name in data
            if package == name or package.startswith(name + ".")
        ]
        wanted = path.suffix == ".py" or any(
            fnmatch.fnmatch(rel, pattern) for rel in inside for pattern in declared
        )
        if wanted:
            target = site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return site


def test_the_wheel_ships_the_report_tooling(installed: Path) -> None:
    tooling = installed / "hil" / "report" / "tooling"
    assert sorted(p.name for p in tooling.iterdir()) == [
        "allurerc.mjs",
        "package-lock.json",
        "package.json",
    ]
    assert (tooling / "package-lock.json").read_bytes() == (
        ROOT / "ci" / "package-lock.json"
    ).read_bytes()


def test_hil_report_outside_a_checkout_installs_its_tooling_and_renders(
    installed: Path, tmp_path: Path
) -> None:
    results = tmp_path / "allure-results"
    results.mkdir()
    (results / "1-result.json").write_text(RESULT)
    deps = sysconfig.get_paths()["purelib"]  # pyserial, rich...: this venv's, not its hil
    code = (
        "import sys; sys.path[:0] = sys.argv[1:3]; "
        "import hil; assert hil.__file__.startswith(sys.argv[1]), hil.__file__; "
        "from hil.cli import main; sys.exit(main(['report']))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "NPM_CONFIG_OFFLINE": "true",  # from npm's cache: tests read no network
        "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm")),
    }
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(installed), deps],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "allure-report" / "index.html").is_file()
    assert (tmp_path / "allure-history.jsonl").is_file()
    (tooling,) = (tmp_path / "cache" / "mpy-hil").glob("report-tooling-*")
    assert (tooling / "node_modules" / "allure" / "cli.js").is_file()
