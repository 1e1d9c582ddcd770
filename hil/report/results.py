"""Per-run files of an Allure results directory: ``categories.json`` and ``environment.properties``.

Both describe the whole run, so exactly one process writes them: the pytest controller, in
``pytest_sessionfinish``, never an xdist worker (workers write only their own test results; N
workers writing the same file race and the last one wins with a partial picture). Workers hand
what they learnt (the firmware of the board each one leased) to the controller through xdist's
``workeroutput``; see ``is_xdist_worker``.

The categories keep whose fault a failure is apart, by the marker that every mpy-hil error puts
in its message (``hil/errors.py``): ``[infrastructure fault]`` (the rig: link, deadline, raw REPL,
lease, flashing) or ``[product fault]`` (the code under test: ``RemoteError``). Allure 2 reads
them from ``categories.json``; Allure 3 reads them from its config file only, so
``ci/allurerc.mjs`` carries the same list (a unit test keeps the two equal).
"""

from __future__ import annotations

import json
import os
import platform as _platform
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hil
from hil import board_text
from hil.errors import INFRASTRUCTURE, PRODUCT, USAGE

INFRASTRUCTURE_MARK = f"[{INFRASTRUCTURE} fault]"
PRODUCT_MARK = f"[{PRODUCT} fault]"
USAGE_MARK = f"[{USAGE} fault]"


def _containing(marker: str) -> str:
    """A regex for a message that contains ``marker``.

    Anchored at both ends because Allure 2 matches the whole message (Java ``matches()``) while
    Allure 3 searches (``RegExp.test``); anchoring also keeps the search linear on long messages.
    ``[\\s\\S]`` rather than ``.`` because messages span lines.
    """
    return rf"^[\s\S]*{re.escape(marker)}[\s\S]*$"


def _lacking(*markers: str) -> str:
    """A regex for a message that contains none of ``markers`` (same anchoring as above)."""
    alternatives = "|".join(re.escape(m) for m in markers)
    return rf"^(?![\s\S]*(?:{alternatives}))[\s\S]*$"


#: Allure categories, first match wins (Allure 3), and disjoint (Allure 2 files a result under
#: every category it matches). What matches none falls into Allure's own defaults.
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Infrastructure errors",
        "description": "The rig failed (link, deadline, raw REPL, lease, flashing, quarantine): "
        "not the code under test. A run may retry these.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": _containing(INFRASTRUCTURE_MARK),
    },
    {
        "name": "Product defects",
        "description": "The code under test raised on the board (RemoteError). Never retried.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": _containing(PRODUCT_MARK),
    },
    {
        "name": "Usage errors",
        "description": "What the run was given is wrong (an option, rack file, manifest, path).",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": _containing(USAGE_MARK),
    },
    {
        "name": "Assertion failures",
        "description": "An assertion of the test itself did not hold.",
        "matchedStatuses": ["failed"],
        "messageRegex": _lacking(INFRASTRUCTURE_MARK, PRODUCT_MARK, USAGE_MARK),
    },
]


def is_xdist_worker(config: Any) -> bool:
    """True in a pytest-xdist worker, False in the controller or a run without xdist.

    xdist gives each worker's config a ``workerinput`` dict and the controller none (the check
    xdist itself documents). The plugin writes the per-run files only where this is False.
    """
    return hasattr(config, "workerinput")


def results_dir(config: Any) -> Path | None:
    """The ``--alluredir`` of this pytest run, or None when Allure results are not recorded."""
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def write_categories(results: Path | str) -> Path:
    """Write ``categories.json`` (the list above) into the results directory."""
    path = Path(results) / "categories.json"
    _write_atomically(path, json.dumps(CATEGORIES, indent=2) + "\n")
    return path


def environment_properties(
    *,
    firmware: Mapping[str, str | None],
    rack: str | None,
    host: str | None = None,
    capabilities: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The run's environment: firmware per board (``firmware.<board id>``), what each board has
    (``capabilities.<board id>``: declared and probed), rack and host.

    ``rack`` is the rack file (None: virtual boards or a single ``--hil-port``); the versions of
    Python and mpy-hil are added because a changed host stack explains many a sudden failure.
    """
    properties = {
        "host": host or socket.gethostname(),
        "rack": rack or "(none: virtual boards or a single port)",
        "python": _platform.python_version(),
        "mpy-hil": hil.__version__,
    }
    for board, version in sorted(firmware.items()):
        properties[f"firmware.{board}"] = version or "unknown"
    for board, names in sorted((capabilities or {}).items()):
        properties[f"capabilities.{board}"] = names or "(none)"
    return properties


def write_environment(results: Path | str, properties: Mapping[str, object]) -> Path:
    """Write ``environment.properties`` (Java properties format) into the results directory.

    Keys already there from an earlier run into the same results (the suite on another board
    kind, say) are kept unless this run writes them too: the report shows every board's firmware.
    """
    lines = {_escape(str(key), key=True): _escape(str(value)) for key, value in properties.items()}
    path = Path(results) / "environment.properties"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, separator, value = line.partition("=")
            if separator and key not in lines:
                lines[key] = value
    text = "\n".join(f"{key}={value}" for key, value in sorted(lines.items()))
    _write_atomically(path, text + "\n")
    return path


def _escape(text: str, *, key: bool = False) -> str:
    """Java properties escaping: what would end a key or a line, and non-ASCII as \\uXXXX.

    Board text (a firmware's version string) is escaped by ``hil.board_text``'s rule first, so
    that a control character reaches the report as its visible escape, as everywhere else;
    newline and tab are kept (the properties format has its own ``\\n``, ``\\t``).
    """
    out = []
    for ch in board_text.escape(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\t":
            out.append("\\n" if ch == "\n" else "\\t")
        elif ch in "=:#!" or (key and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(ch))
        else:
            out.append(ch)
    if not key and out and out[0] == " ":
        out[0] = "\\ "  # a leading blank of a value would be dropped by readers
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _write_atomically(path: Path, text: str) -> None:
    """Readers (a report server watching the directory) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
