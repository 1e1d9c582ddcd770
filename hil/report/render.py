"""Render Allure results to an HTML report with Allure 3 (Node's ``allure`` package): no Java.

The tooling ships with the package (``hil/report/tooling``: ``package.json`` and
``package-lock.json`` pin Allure 3, ``allurerc.mjs`` is its configuration with the categories of
``results.py``); a checkout's ``ci/`` links to the same files. The modules are installed with
``npm ci`` on first use: into ``ci/`` in a checkout, else into a per-user cache folder (an
installed package's folder may be read-only and must stay as pip left it). So "render the
report" is one command on a fresh machine that has Node.js 20+ and npm, inside a checkout or
not; a run of the tests never installs anything.

The report keeps history between runs (Allure 3's ``historyPath``, a JSON-lines file beside the
report by default), so its trend charts show the runs before this one.
"""

from __future__ import annotations

import hashlib
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
#: The tooling as shipped in the package (also what a checkout's ``ci/`` links to).
PACKAGED = Path(__file__).resolve().parent / "tooling"
TOOLING_FILES = ("package.json", "package-lock.json", CONFIG_NAME)
#: Environment variable that ``allurerc.mjs`` reads for the history file.
HISTORY_ENV = "HIL_REPORT_HISTORY"


class ReportError(InfrastructureError):
    """The report could not be rendered: tooling missing, no results, Allure failed."""


def find_tooling(start: Path | None = None) -> Path:
    """The folder holding ``package.json`` and ``allurerc.mjs`` for Allure 3.

    In order: ``$HIL_REPORT_TOOLING``; ``ci/`` in the working directory or a parent (a checkout
    of mpy-hil, or of a project that vendors our ``ci/``); ``ci/`` beside the ``hil`` package
    (an editable install); else the tooling shipped in the package, copied into a per-user
    cache folder (``$XDG_CACHE_HOME/mpy-hil``) where ``npm ci`` may write.
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
        if _is_tooling(folder) and _same_pins(folder):
            return folder
    if _is_tooling(PACKAGED):
        return user_tooling()
    raise ReportError(
        f"no Allure 3 tooling found (package.json and {CONFIG_NAME}): the package lacks "
        f"hil/report/tooling; reinstall mpy-hil or set ${TOOLING_ENV}"
    )


def _same_pins(folder: Path) -> bool:
    """A ``ci/`` of another project may hold other tooling: use it only when it pins Allure."""
    try:
        return '"allure"' in (folder / "package.json").read_text(encoding="utf-8")
    except OSError:
        return False


def user_tooling(cache: Path | None = None) -> Path:
    """The packaged tooling copied into the user's cache (once per version of the lock file)."""
    base = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256()
    for name in TOOLING_FILES:
        digest.update((PACKAGED / name).read_bytes())
    folder = base / "mpy-hil" / f"report-tooling-{digest.hexdigest()[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOOLING_FILES:
        target = folder / name
        data = (PACKAGED / name).read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
    return folder


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
    command = [npm, "ci", "--prefix", str(tooling), "--no-audit", "--no-fund", "--prefer-offline"]
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
    history: Path | None = None,
) -> Path:
    """Render ``results`` into ``output`` (replaced); return the report's ``index.html``.

    ``history``: the JSON-lines file Allure 3 reads the earlier runs from and appends this one
    to (None: no history).
    """
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
    env = dict(os.environ)
    env.pop(HISTORY_ENV, None)
    if history is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        env[HISTORY_ENV] = str(history.resolve())
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
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
