"""Render Allure results to an HTML report with Allure 3 (Node's ``allure`` package): no Java.

The tooling lives in the checkout's ``ci/`` folder: ``package.json`` and ``package-lock.json``
pin Allure 3, ``allurerc.mjs`` is its configuration (the categories of ``results.py``). The
modules are installed with ``npm ci`` on first use, so "render the report" is one command on a
fresh machine that has Node.js 20+ and npm; a run of the tests never installs anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from hil.errors import InfrastructureError

#: Where the tooling is looked for first (a ``ci/``-like folder), before the checkout's ``ci/``.
TOOLING_ENV = "HIL_REPORT_TOOLING"
#: Allure's command-line entry point inside the tooling folder.
ALLURE_CLI = Path("node_modules") / "allure" / "cli.js"
CONFIG_NAME = "allurerc.mjs"


class ReportError(InfrastructureError):
    """The report could not be rendered: tooling missing, no results, Allure failed."""


def find_tooling(start: Path | None = None) -> Path:
    """The folder holding ``package.json`` and ``allurerc.mjs`` for Allure 3.

    In order: ``$HIL_REPORT_TOOLING``; ``ci/`` in the working directory or a parent (a checkout
    of the project under test that vendors our ``ci/``); ``ci/`` beside the ``hil`` package (an
    editable install of mpy-hil itself).
    """
    env = os.environ.get(TOOLING_ENV)
    if env:
        folder = Path(env)
        if not _is_tooling(folder):
            raise ReportError(f"${TOOLING_ENV}={env} has no package.json and {CONFIG_NAME}")
        return folder
    here = (start or Path.cwd()).resolve()
    candidates = [parent / "ci" for parent in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[2] / "ci")
    for folder in candidates:
        if _is_tooling(folder):
            return folder
    raise ReportError(
        f"no Allure 3 tooling found (a ci/ folder with package.json and {CONFIG_NAME}); "
        f"run from an mpy-hil checkout or set ${TOOLING_ENV}"
    )


def _is_tooling(folder: Path) -> bool:
    return (folder / "package.json").is_file() and (folder / CONFIG_NAME).is_file()


def installed(tooling: Path) -> bool:
    """True when ``npm ci`` ran for the current lock file (npm's own marker is newer)."""
    marker = tooling / "node_modules" / ".package-lock.json"
    lock = tooling / "package-lock.json"
    if not (tooling / ALLURE_CLI).is_file() or not marker.is_file():
        return False
    return not lock.is_file() or marker.stat().st_mtime >= lock.stat().st_mtime


def ensure_installed(tooling: Path) -> None:
    """Install the pinned modules with ``npm ci --prefix <tooling>`` unless they are there."""
    if installed(tooling):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm not found: install Node.js 20+ and npm (apt-get install nodejs npm)")
    command = [npm, "ci", "--prefix", str(tooling), "--no-audit", "--no-fund"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ReportError(
            f"`npm ci` failed (exit {done.returncode}): {last[0]}", where=str(tooling)
        )


def has_results(results: Path) -> bool:
    """True when the directory holds at least one test result of allure-pytest."""
    return results.is_dir() and any(results.glob("*-result.json"))


def render(
    results: Path,
    output: Path,
    *,
    tooling: Path | None = None,
    name: str = "mpy-hil",
    install: bool = True,
) -> Path:
    """Render ``results`` into ``output`` (replaced); return the report's ``index.html``."""
    if not has_results(results):
        raise ReportError(
            "no Allure results (*-result.json) here: run pytest with --alluredir",
            where=str(results),
        )
    tooling = tooling or find_tooling()
    if install:
        ensure_installed(tooling)
    elif not installed(tooling):
        raise ReportError(f"Allure 3 is not installed: run `npm ci --prefix {tooling}`")
    node = _node()
    if output.exists():
        shutil.rmtree(output)
    command = [
        node,
        str(tooling / ALLURE_CLI),
        "generate",
        str(results.resolve()),
        "--config",
        str((tooling / CONFIG_NAME).resolve()),
        "--output",
        str(output.resolve()),
        "--report-name",
        name,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    index = output / "index.html"
    if done.returncode != 0 or not index.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ReportError(
            f"Allure 3 did not render the report (exit {done.returncode}): {last[0]}",
            where=str(results),
        )
    _strip_analytics(index)
    return index


#: A <script> element: its opening tag, its body.
_SCRIPT = re.compile(r"(<script\b[^>]*>)([\s\S]*?)</script>\s*", re.IGNORECASE)


def _strip_analytics(index: Path) -> None:
    """Remove the web analytics (Google's gtag) that Allure 3 puts into every report.

    Opening a HIL report must not call out of the machine (CI runners on a lab network, and the
    project's rule that nothing reads the network); the report works the same without it. Only
    the loader (``gtag/js`` in its ``src``) and the small inline script that calls ``gtag(`` go.
    """
    html = index.read_text(encoding="utf-8")

    def keep(match: re.Match[str]) -> str:
        tag, body = match.group(1), match.group(2)
        if "gtag/js" in tag or (len(body) < 2048 and "function gtag(" in body):
            return ""
        return match.group(0)

    cleaned = _SCRIPT.sub(keep, html)
    if cleaned != html:
        index.write_text(cleaned, encoding="utf-8")


def serve(report: Path, *, tooling: Path) -> int:
    """Serve a rendered report on localhost and open a browser (``allure open``) until Ctrl-C."""
    command = [_node(), str(tooling / ALLURE_CLI), "open", str(report.resolve())]
    return subprocess.run(command, check=False).returncode


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ReportError("node not found: install Node.js 20+ (apt-get install nodejs)")
    return node
