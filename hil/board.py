"""A board: identity, code, files, deploy and resets, on top of its REPL.

Everything here is Python source sent to the board through ``Repl``; nothing knows or cares
whether the board is virtual. Board-side helpers run inside a throwaway function so the REPL's
``__main__`` namespace (which tests inspect) is left as it was found.

File transfer is the hot path of a test run (deploying modules before every session), so
``put`` sends each chunk as a Python bytes literal in which only the bytes the REPL or the
lexer would act on are escaped (about 7 % overhead on random data, against 33 % for base64)
when the board passes a one-time probe, and base64 otherwise; chunks are large so the per-exec
round trips vanish, and the result is verified by sha256 on the board.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.deadline import Deadline, as_deadline
from hil.errors import HilError, LinkError, ProtocolError, RemoteError
from hil.friendly import FriendlyRepl, FriendlyResult, PlayResult, play
from hil.repl import Repl, parse_value
from hil.transcript import Transcript
from hil.transport import Transport

#: Bytes a raw-paste/raw REPL or the lexer would act on inside ``b'...'``: Ctrl-A..D, NUL,
#: CR/LF (the lexer turns CR into LF), the backslash and the quote.
_LITERAL_ESCAPES = {
    0x00: b"\\x00",
    0x01: b"\\x01",
    0x02: b"\\x02",
    0x03: b"\\x03",
    0x04: b"\\x04",
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x5C: b"\\\\",
    0x27: b"\\'",
}
_LITERAL_SPECIAL = re.compile(b"[\x00-\x04\n\r\\\\']")

#: File bytes per ``put`` exec. Large chunks amortise the exec round trips; the board holds
#: about twice a chunk in RAM while compiling it, which every supported port can afford.
PUT_CHUNK = 4096
#: File bytes per line of ``get`` output (a multiple of 3: base64 lines concatenate).
GET_CHUNK = 3 * 512
#: Bytes per second ``put`` budgets for: a quarter of 9600 baud (raw-paste flow control, the
#: board compiling and writing what it received). A merely slow link must not time out.
SLOW_RATE = 9600 / 10 / 4
#: Seconds added to each ``put`` exec's budget for round trips and the board's own work.
EXEC_MARGIN = 5.0
#: Seconds the clean-up exec of a failed ``put`` gets to close the file, whatever is left of
#: the transfer's budget (after a stall, nothing is).
CLEANUP_TIMEOUT = 5.0


def bytes_literal(data: bytes) -> bytes:
    """``data`` as MicroPython source for a bytes literal, escaping only what must be."""
    return b"b'" + _LITERAL_SPECIAL.sub(lambda m: _LITERAL_ESCAPES[m.group()[0]], data) + b"'"


def _helper(body: str, *args: Any) -> str:
    """Board code that runs ``body`` inside a function and removes the function afterwards."""
    params = ", ".join(f"a{i}" for i in range(len(args)))
    indented = "".join("    " + line + "\n" for line in body.strip("\n").split("\n"))
    call = ", ".join(repr(a) for a in args)
    return f"def _hil({params}):\n{indented}try:\n    _hil({call})\nfinally:\n    del _hil\n"


_IDENTITY = """
import sys, os
try:
    import machine, binascii
    uid = binascii.hexlify(machine.unique_id()).decode()
except Exception:
    uid = ''
try:
    u = os.uname()
    un = {'sysname': u[0], 'nodename': u[1], 'release': u[2], 'version': u[3], 'machine': u[4]}
except Exception:
    un = {}
i = sys.implementation
print(repr((i.name, tuple(i.version), getattr(i, '_machine', ''), sys.platform, un, uid)))
"""

_SHA256 = """
import hashlib, binascii
r = {}
for p in a0:
    try:
        f = open(p, 'rb')
    except OSError:
        r[p] = None
        continue
    h = hashlib.sha256()
    b = bytearray(1024)
    with f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(b[:n] if n < 1024 else b)
    r[p] = binascii.hexlify(h.digest()).decode()
print(repr(r))
"""

_LS = """
import os
r = []
for e in os.ilistdir(a0):
    d = e[1] == 0x4000
    s = e[3] if len(e) > 3 and e[3] >= 0 else (0 if d else os.stat(a0.rstrip('/') + '/' + e[0])[6])
    r.append((e[0], d, s))
print(repr(r))
"""

_MKDIR = """
import os
parts = a0.strip('/').split('/')
paths = ['/' * a0.startswith('/') + '/'.join(parts[:i + 1]) for i in range(len(parts))]
for p in paths if a1 else paths[-1:]:
    try:
        os.mkdir(p)
    except OSError as e:
        if e.errno != 17 or not (a2 or p != a0):
            raise
"""

_RM = """
import os
def rm(p):
    try:
        os.remove(p)
    except OSError:
        if not a1:
            raise
        for e in os.ilistdir(p):
            rm(p.rstrip('/') + '/' + e[0])
        os.rmdir(p)
rm(a0)
"""

_GET = """
import sys
from binascii import b2a_base64
with open(a0, 'rb') as f:
    while True:
        b = f.read(a1)
        if not b:
            break
        sys.stdout.write(b2a_base64(b))
"""


@dataclass(frozen=True)
class Identity:
    """Who the board is: ``sys.implementation``, ``os.uname()`` and ``machine.unique_id()``."""

    implementation: str
    version: tuple[Any, ...]
    machine: str
    platform: str
    uname: dict[str, str]
    unique_id: str

    @property
    def release(self) -> str:
        return self.uname.get("release", ".".join(str(v) for v in self.version[:3]))


@dataclass(frozen=True)
class FileInfo:
    name: str
    is_dir: bool
    size: int


@dataclass
class DeployReport:
    """What ``deploy`` did: remote paths copied, and those skipped because the hash matched."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Board:
    """One MicroPython board behind a REPL."""

    def __init__(self, repl: Repl, *, name: str | None = None) -> None:
        self.repl = repl
        self.name = name or repl.where
        self.put_chunk = PUT_CHUNK
        self._identity: Identity | None = None
        self._literal_ok: bool | None = None
        self._friendly = FriendlyRepl(repl)

    @classmethod
    def open(
        cls,
        url: str | Callable[[], str],
        *,
        name: str | None = None,
        baudrate: int = 115200,
        tap: Transcript | None = None,
        raw_paste: bool = True,
        wait: float = 0.0,
        **serial_options: Any,
    ) -> Board:
        """Open the board's port (device path or pyserial URL) and enter the raw REPL."""
        transport = Transport.open(
            url, baudrate=baudrate, tap=tap, wait=wait, name=name, **serial_options
        )
        board = cls(Repl(transport, raw_paste=raw_paste), name=name)
        try:
            board.repl.enter_raw()
        except BaseException:
            transport.close()
            raise
        return board

    @property
    def transport(self) -> Transport:
        return self.repl.transport

    @property
    def transcript(self) -> Transcript:
        return self.repl.transport.tap

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- code --------------------------------------------------------------------------------

    def exec(
        self,
        code: str,
        *,
        timeout: float = 10.0,
        on_output: Callable[[str], None] | None = None,
    ) -> str:
        """Run code in the REPL's ``__main__``; return what it printed. Raises ``RemoteError``
        when it raised; ``on_output`` streams the output instead (then "" is returned)."""
        if on_output is None:
            return _text(self.repl.exec(code, timeout=timeout))
        decoder = _StreamDecoder(on_output)
        self.repl.exec(code, timeout=timeout, on_output=decoder.feed)
        decoder.flush()
        return ""

    def eval(self, expression: str, *, timeout: float = 10.0) -> Any:
        """The value of an expression on the board."""
        return self.repl.eval(expression, timeout=timeout)

    def run(
        self,
        path: str | Path,
        *,
        timeout: float = 30.0,
        on_output: Callable[[str], None] | None = None,
    ) -> str:
        """Run a local Python file on the board (without copying it there)."""
        return self.exec(Path(path).read_text(), timeout=timeout, on_output=on_output)

    def identity(self, *, refresh: bool = False) -> Identity:
        """Implementation, ``os.uname()`` and ``machine.unique_id()`` as hex (cached)."""
        if self._identity is None or refresh:
            name, version, machine, platform, uname, uid = self._run_value(_IDENTITY)
            self._identity = Identity(name, tuple(version), machine, platform, uname, uid)
        return self._identity

    def _run_value(self, code: str, *args: Any, timeout: Deadline | float = 10.0) -> Any:
        """Run a helper that prints one ``repr``; return the value."""
        out = self.repl.exec(_helper(code, *args), timeout=timeout)
        try:
            return parse_value(_text(out))
        except ValueError as exc:
            raise ProtocolError(f"board helper printed no value: {exc}", where=self.name) from exc

    # -- resets ------------------------------------------------------------------------------

    def soft_reset(self, *, raw: bool = True, timeout: float = 10.0) -> str:
        """Soft-reset; return the boot output. Modules, heap and mounts are gone afterwards."""
        return _text(self.repl.soft_reset(raw=raw, timeout=timeout))

    def hard_reset(self, *, timeout: float = 20.0) -> None:
        """``machine.reset()``, then re-open the port (it may vanish and come back) and
        re-enter the raw REPL."""
        self.repl.launch("import machine\nmachine.reset()")
        self.repl.reconnect(timeout)

    # -- friendly REPL -----------------------------------------------------------------------

    def friendly(self, source: str, *, timeout: float = 10.0) -> FriendlyResult:
        """Type source at the friendly prompt; what a person would see."""
        return self._friendly.type(source, timeout=timeout)

    def play(self, transcript: str, *, timeout: float = 10.0) -> PlayResult:
        """Play a doctest-style transcript on the board (see ``hil.friendly.play``)."""
        return play(self._friendly, transcript, timeout=timeout)

    # -- files -------------------------------------------------------------------------------

    def ls(self, path: str = "/") -> list[FileInfo]:
        return [FileInfo(n, d, s) for n, d, s in self._run_value(_LS, path)]

    def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        self.repl.exec(_helper(_MKDIR, path, parents, exist_ok))

    def rm(self, path: str, *, recursive: bool = False) -> None:
        self.repl.exec(_helper(_RM, path, recursive))

    def sha256(self, path: str) -> str | None:
        """Hex sha256 of a board file, None when it does not exist."""
        return self.sha256_many([path])[path]

    def sha256_many(
        self, paths: Iterable[str], *, timeout: Deadline | float = 60.0
    ) -> dict[str, str | None]:
        return self._run_value(_SHA256, list(paths), timeout=timeout)

    def get(self, path: str, *, timeout: float = 120.0) -> bytes:
        """A board file's content (sent base64: the raw REPL's stdout is not binary safe)."""
        out = self.repl.exec(_helper(_GET, path, GET_CHUNK), timeout=timeout)
        return base64.b64decode(b"".join(out.split()))

    def put(
        self,
        source: str | Path | bytes,
        path: str,
        *,
        timeout: Deadline | float | None = None,
        verify: bool = True,
    ) -> None:
        """Write a local file (or bytes) to ``path`` on the board, replacing it.

        ``timeout`` bounds the whole transfer, verification included, and defaults to what the
        data needs at a slow 9600 baud plus margin: a transfer that is merely slow must not
        fail. Each exec is also capped to what its own chunk needs at that rate, so a stall is
        noticed after one chunk's budget rather than the whole transfer's.
        """
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        deadline = as_deadline(timeout if timeout is not None else 10.0 + len(data) / SLOW_RATE)
        encode = self._chunk_encoder()
        step = self.put_chunk
        self.repl.note(f"put {len(data)} bytes to {path}")
        self._put_exec(
            f"_hil_f = open({path!r}, 'wb')\n_hil_w = _hil_f.write\n"
            "from binascii import a2b_base64 as _hil_a\n".encode(),
            deadline,
        )
        cleanup = b"_hil_f.close()\ndel _hil_f, _hil_w, _hil_a\n"
        try:
            for start in range(0, len(data), step):
                self._put_exec(b"_hil_w(" + encode(data[start : start + step]) + b")", deadline)
        except BaseException:
            # Best effort: close the file if the board still listens, but the error that
            # stopped the transfer is the one to report.
            with contextlib.suppress(HilError):
                self.repl.exec(cleanup, timeout=CLEANUP_TIMEOUT)
            raise
        self._put_exec(cleanup, deadline)
        if verify:
            got = self.sha256_many([path], timeout=deadline)[path]
            if got != hashlib.sha256(data).hexdigest():
                raise LinkError(
                    f"{path}: data corrupted in transit (sha256 on the board {got}, "
                    f"sent {hashlib.sha256(data).hexdigest()})",
                    where=self.name,
                    tail=self.transport.tail,
                )

    def _put_exec(self, code: bytes, deadline: Deadline) -> None:
        """One exec of a ``put``: within the transfer's deadline and what ``code`` needs."""
        self.repl.exec(code, timeout=deadline.cap(EXEC_MARGIN + len(code) / SLOW_RATE))

    def _chunk_encoder(self) -> Callable[[bytes], bytes]:
        """The densest encoding this board is known to take (probed once per board)."""
        if self._literal_ok is None:
            probe = bytes(range(256))
            try:
                back = self.repl.eval(bytes_literal(probe))
            except (RemoteError, ProtocolError):  # the board rejects the probe: base64 for it
                back = None
            self._literal_ok = back == probe
            self.repl.note(f"8-bit bytes literals {'work' if self._literal_ok else 'fail'}")
        if self._literal_ok:
            return bytes_literal
        return lambda chunk: b"_hil_a(b'" + base64.b64encode(chunk) + b"')"

    def deploy(
        self,
        local_dir: str | Path,
        remote_dir: str = "/",
        *,
        exclude: Iterable[str] = ("__pycache__", "*.pyc", ".*"),
    ) -> DeployReport:
        """Copy a local directory tree to the board, skipping files whose sha256 already
        matches (one hashing exec for the whole tree, then only what changed)."""
        root = Path(local_dir)
        patterns = tuple(exclude)
        files: dict[str, Path] = {}
        for local in sorted(root.rglob("*")):
            rel = local.relative_to(root)
            if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in patterns):
                continue
            if local.is_file():
                files[posixpath.join(remote_dir, *rel.parts)] = local
        report = DeployReport()
        if not files:
            return report
        remote = self.sha256_many(files)
        made: set[str] = set()
        for path, local in files.items():
            data = local.read_bytes()
            if remote.get(path) == hashlib.sha256(data).hexdigest():
                report.skipped.append(path)
                continue
            parent = posixpath.dirname(path)
            if parent not in ("", "/") and parent not in made:
                self.mkdir(parent, parents=True, exist_ok=True)
                made.add(parent)
            self.put(data, path)
            report.copied.append(path)
        return report


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class _StreamDecoder:
    """UTF-8 decode a byte stream whose chunks may split characters."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        import codecs

        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._sink = sink

    def feed(self, data: bytes) -> None:
        if text := self._decoder.decode(data):
            self._sink(text)

    def flush(self) -> None:
        if text := self._decoder.decode(b"", final=True):
            self._sink(text)
