"""Board methods as actions a person recognises: ``put main.py (2.1 kB)``, not its helper code.

A ``put`` runs several small board programs (open, chunks, close, checksum); a report that
showed each as a step would bury the test's own code under ours. ``action`` wraps a ``Board``
method in ``Transcript.action`` with a title made here from its arguments (and, where the
result says more, from its result), so reports show one step per user-visible action with the
helper programs inside it, and the REPL view folds them into one line.

This module knows the titles, not the board: ``hil.board`` only decorates its methods.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hil.boardput import TMP_SUFFIX
from hil.transcript import GROUP, STEP

F = TypeVar("F", bound=Callable[..., Any])


def size_text(n: int) -> str:
    """``622 B``, ``2.1 kB``, ``3.4 MB``: sizes as a person reads them (1 kB = 1000 B)."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _data_size(source: Any) -> int | None:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    try:
        return Path(source).stat().st_size
    except (OSError, TypeError):
        return None


def _put(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    path = _arg(args, kwargs, 1, "path", "?")
    size = _data_size(_arg(args, kwargs, 0, "source", None))
    return f"put {path}" + (f" ({size_text(size)})" if size is not None else "")


def _paths(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    paths = list(_arg(args, kwargs, 0, "paths", []))
    if len(paths) == 1:
        return f"checksum {_destination(paths[0])}"
    return f"checksum {len(paths)} files"


def _destination(path: Any) -> Any:
    """The file a ``put``'s temp file becomes (``/config.py``, not ``/config.py.hil-tmp``: the
    checksum inside a ``put`` step checks the data of the file it is putting)."""
    if isinstance(path, str) and path.endswith(TMP_SUFFIX) and len(path) > len(TMP_SUFFIX):
        return path[: -len(TMP_SUFFIX)]
    return path


def _deploy_start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    local = Path(_arg(args, kwargs, 0, "local_dir", "."))
    remote = _arg(args, kwargs, 1, "remote_dir", "/")
    where = "" if remote in ("/", "") else f" to {remote}"
    return f"deploy {local.name or local}/{where}"


def _deploy_done(title: str, result: Any) -> str:
    copied = len(getattr(result, "copied", []))
    total = copied + len(getattr(result, "skipped", []))
    return f"{title} ({total} files, {copied} sent)"


def _get_done(title: str, result: Any) -> str:
    return f"{title} ({size_text(len(result))})" if isinstance(result, bytes) else title


def _path_of(verb: str, default: str = "?") -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    def title(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        path = _arg(args, kwargs, 0, "path", default)
        return f"{verb} {posixpath.normpath(path) if isinstance(path, str) else path}"

    return title


#: Per method: its title from (args, kwargs), how it shows, and a final title from its result.
TITLES: dict[str, tuple[Callable[..., str], str, Callable[[str, Any], str] | None]] = {
    "probe": (lambda a, k: "probe the board", GROUP, None),
    "identity": (lambda a, k: "identity (sys.implementation, os.uname)", GROUP, None),
    "put": (_put, GROUP, None),
    "get": (_path_of("get"), GROUP, _get_done),
    "deploy": (_deploy_start, GROUP, _deploy_done),
    "ls": (_path_of("ls", "/"), GROUP, None),
    "rm": (_path_of("rm"), GROUP, None),
    "mkdir": (_path_of("mkdir"), GROUP, None),
    "checksums": (_paths, GROUP, None),
    "sha256_many": (_paths, GROUP, None),
    "hard_reset": (lambda a, k: "hard reset", STEP, None),
}


#: Methods that answer from a cache when they can: no action then (nothing crosses the wire).
CACHED = {"probe": "_facts", "identity": "_identity"}


def action(name: str) -> Callable[[F], F]:
    """Run the decorated ``Board`` method as the action ``name`` of ``TITLES``."""
    make_title, mode, done = TITLES[name]
    cache = CACHED.get(name)

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            tap = getattr(self, "transcript", None)
            if tap is None or not hasattr(tap, "action"):
                return method(self, *args, **kwargs)
            if cache and getattr(self, cache, None) is not None and not kwargs.get("refresh"):
                return method(self, *args, **kwargs)
            try:
                title = make_title(args, kwargs)
            except Exception:  # a title must never break the action
                title = name
            with tap.action(title, mode=mode) as act:
                result = method(self, *args, **kwargs)
                if done is not None:
                    act.title = done(title, result)
                return result

        return run  # type: ignore[return-value]

    return wrap
