"""A directory of mine: state that only this user can write, and files written into it without
following links.

Why: the framework keeps state (virtual boards, a run's locks) under the shared temporary
directory, whose names anyone can guess. Another local user who creates such a directory first,
with ``vb0/board.json -> /home/victim/file`` inside, would make the victim overwrite their own
file. So a state directory is created mode 0700, an existing one must be a real directory owned
by this user and writable by no one else (else a usage error naming it), and files are written
with ``O_NOFOLLOW``, or to a fresh temporary name and renamed over the target, which replaces a
planted link instead of writing through it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from hil.errors import ConfigError

__all__ = ["check_private", "open_private", "private_dir", "write_private"]

#: Flags of every file opened for writing here: never through a symbolic link.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def private_dir(path: str | os.PathLike[str], *, what: str = "state directory") -> Path:
    """``path`` (made absolute) as a directory only this user can write; created 0700 if absent.

    Missing parents are created as ordinary directories (the user chose them); the directory
    itself must then pass ``check_private``. Any problem is a ``ConfigError`` naming the path.
    """
    directory = Path(os.path.abspath(os.fspath(path)))
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise ConfigError(
            f"cannot create the {what}: {e.strerror or e}", where=str(directory)
        ) from None
    check_private(directory, what=what)
    return directory


def check_private(path: str | os.PathLike[str], *, what: str = "state directory") -> None:
    """Refuse (``ConfigError``) a directory that is a link, not ours, or writable by others."""
    where = os.fspath(path)
    try:
        st = os.lstat(where)
    except OSError as e:
        raise ConfigError(f"cannot use the {what}: {e.strerror or e}", where=where) from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"the {what} is a symbolic link; refusing to use it", where=where)
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"the {what} is not a directory", where=where)
    if st.st_uid != os.geteuid():
        raise ConfigError(
            f"the {what} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}): someone "
            "else may have planted files there; remove it or choose another directory",
            where=where,
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"the {what} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "make it private (chmod go-w) or choose another directory",
            where=where,
        )


def open_private(path: str | os.PathLike[str], *, append: bool = False) -> int:
    """A file descriptor for writing ``path`` (mode 0600 if created), never through a link.

    ``append`` keeps what is there (logs); otherwise the file is truncated.
    """
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        return os.open(path, flags, 0o600)
    except OSError as e:
        raise ConfigError(
            f"cannot write the file: {e.strerror or e} (a symbolic link is never followed)",
            where=os.fspath(path),
        ) from None


def write_private(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` atomically: a fresh temporary file in the same directory,
    renamed over it (a link at ``path`` is replaced, never followed)."""
    target = os.fspath(path)
    payload = data.encode() if isinstance(data, str) else bytes(data)
    tmp = f"{target}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
