"""A board: identity, code, files, deploy and resets, on top of its REPL.

Everything here is Python source sent to the board through ``Repl``, virtual or not; the
board-side programs are in ``hil.boardcode`` (each leaving ``__main__`` as it was found).
Boards differ, so the board is asked once what it has (``facts``, ``hil.probe``) and each helper
picks its way: file chunks as 8-bit bytes literals where the lexer takes them, else base64, else
ASCII-escaped literals; answers (``get``, ``eval``, helpers) checked end to end (``hil.checked``);
files compared by sha256 with ``hashlib``, else Adler-32 and size; chunks sized by the free heap;
a flat filesystem (no ``os.mkdir``) takes ``/name`` as ``name``.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil import boardcode, boardput, checked
from hil.actions import action
from hil.boardcode import helper
from hil.boardput import MIN_CHUNK, SLOW_RATE
from hil.deadline import Deadline, as_deadline
from hil.encoding import (
    ADLER32,
    ADLER_STEP,
    SHA256,
    board_checksum,
    bytes_literal,
    checksum,
)
from hil.errors import InfrastructureError, ProtocolError, RemoteError
from hil.friendly import FriendlyRepl, FriendlyResult, PlayResult, play
from hil.probe import BoardFacts, MissingFeature, probe
from hil.repl import Repl
from hil.replparse import StreamDecoder
from hil.transcript import Transcript
from hil.transport import Transport

__all__ = ["Board", "DeployReport", "FileInfo", "Identity", "bytes_literal"]

#: Most file bytes per ``put`` exec. Large chunks amortise the exec round trips; the board
#: holds several times a chunk in RAM while receiving and compiling it, so a board with a
#: small heap gets smaller ones (``HEAP_PER_CHUNK``).
PUT_CHUNK = 4096
#: Free heap needed per chunk byte: the source line, the lexer's copy, the bytes object and
#: the compiled constant, with room to spare for fragmentation (a micro:bit with 7.3 kB free
#: took 896-byte chunks and failed at 918; a chunk that still fails is halved and resent).
HEAP_PER_CHUNK = 10
#: Free heap per byte of code for checked code on a plain raw link (it holds a second copy of
#: the code while compiling it); longer code than the heap allows goes unchecked (noted).
HEAP_PER_CHECK = 6
#: Boards with less free heap than this (a micro:bit: 7 kB of heap, 1.8 kB of C stack) run a
#: user's code unchecked on a plain raw link: it may import deep chains that need every byte of
#: stack, and the checked form runs it one ``exec`` deeper (``hil.replrun``).
TINY_HEAP = 16 * 1024
#: File bytes per line of ``get`` output (a multiple of 3: base64 lines concatenate).
GET_CHUNK = 3 * 512
#: Seconds a hard reset may take to show (port failing, boot output) before the port re-opens.
RESET_SIGN = 5.0


@dataclass(frozen=True)
class Identity:
    """Who the board is: ``sys.implementation``, ``os.uname()`` and ``machine.unique_id()``
    (hex, None where the board has no unique id)."""

    implementation: str
    version: tuple[Any, ...]
    machine: str
    platform: str
    uname: dict[str, str]
    unique_id: str | None

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
    """One MicroPython board behind a REPL; ``facts`` (given, or probed on first need)
    choose how files and answers travel."""

    def __init__(
        self, repl: Repl, *, name: str | None = None, facts: BoardFacts | None = None
    ) -> None:
        self.repl = repl
        self.name = name or repl.where
        self._facts = facts
        self._put_chunk: int | None = None
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
        facts: BoardFacts | None = None,
        **serial_options: Any,
    ) -> Board:
        """Open the board's port (device path or pyserial URL) and enter the raw REPL.
        ``facts``: what is known of the board (else it is probed on first need)."""
        transport = Transport.open(
            url, baudrate=baudrate, tap=tap, wait=wait, name=name, **serial_options
        )
        board = cls(Repl(transport, raw_paste=raw_paste), name=name, facts=facts)
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

    # -- what the board has ------------------------------------------------------------------

    @property
    def facts(self) -> BoardFacts:
        """What the board has (``hil.probe``), asked once per Board object."""
        return self.probe()

    @action("probe")
    def probe(self, *, refresh: bool = False) -> BoardFacts:
        """Run the probe (once, or again with ``refresh``) and return the facts."""
        if self._facts is None or refresh:
            self._facts = probe(self)
            heap = self._facts.mem_free
            self.repl.check_limit = heap // HEAP_PER_CHECK if heap else None
            self.repl.check_user_code = not heap or heap >= TINY_HEAP
        return self._facts

    @property
    def put_chunk(self) -> int:
        """File bytes per ``put`` exec: ``PUT_CHUNK``, less on a small heap."""
        if self._put_chunk is not None:
            return self._put_chunk
        free = self.facts.mem_free
        if free is None:
            return PUT_CHUNK
        return max(MIN_CHUNK, min(PUT_CHUNK, free // HEAP_PER_CHUNK))

    @put_chunk.setter
    def put_chunk(self, size: int) -> None:
        self._put_chunk = size

    @property
    def _adler_step(self) -> int:
        """Bytes per read of the Adler-32 helper: less on a small heap."""
        return max(32, min(ADLER_STEP, (self.facts.mem_free or 64 * ADLER_STEP) // 64))

    @property
    def checksum_kind(self) -> str:
        """How files are compared: ``"sha256"`` with ``hashlib``, else ``"adler32"``."""
        return SHA256 if self.facts.has("hashlib") else ADLER32

    def board_path(self, path: str) -> str:
        """A board path as the board's filesystem takes it: on a flat one (no ``os.mkdir``:
        micro:bit) ``/name`` is ``name``, and deeper paths cannot exist."""
        if self.facts.has("os.mkdir"):
            return path
        name = path.lstrip("/")
        if "/" in name or not name:
            raise MissingFeature(f"path {path!r}", ["os.mkdir"], where=self.name)
        return name

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
        decoder = StreamDecoder(on_output)
        self.repl.exec(code, timeout=timeout, on_output=decoder.feed)
        decoder.flush()
        return ""

    def eval(self, expression: str, *, timeout: float = 10.0) -> Any:
        """The value of an expression on the board, checked end to end (``hil.checked``):
        bytes come back compactly (raw or base64, by what the board has), other values as
        their ``repr``; a damaged answer is a ``LinkError``."""
        head = boardcode.compact("def _hil():\n" + boardcode.indent(self._answer_source()))
        before = f"{head} return _o\ntry:\n _hil()((\n"
        code = f"{before}{expression}\n))\nfinally:\n del _hil\n"
        first = before.count("\n") + 1
        try:
            # checked where the board can afford it, even on a small one: a value returned as
            # success must be right, and an expression is seldom deep
            out = self.repl.exec(code, timeout=timeout, checked_only=None)
        except RemoteError as exc:
            # the traceback as the expression typed at ``>>>`` gives it, not our helper's
            last = first + expression.count("\n")
            exc.traceback = checked.expression_traceback(exc.traceback, first, last)
            raise
        return self._answer(out)

    def _answer_source(self) -> str:
        features = self._facts.features if self._facts is not None else frozenset()
        return checked.answer_function(checked.answer_style(features), self._sha)

    @property
    def _sha(self) -> bool:
        """sha256 where the board is known to have ``hashlib`` (answers need no probe: a
        board not probed yet answers by ``repr`` and Adler-32, which every board can)."""
        return self._facts is not None and self._facts.has("hashlib")

    def run_helper(self, code: str | bytes, timeout: Deadline | float) -> bytes:
        """Run our own helper: its MemoryError (7 kB heaps) is the rig's, not the product's."""
        try:
            return self.repl.exec(code, timeout=timeout, checked_only=True)
        except RemoteError as exc:
            if exc.type_name != "MemoryError":
                raise
            raise InfrastructureError(f"no heap for a helper: {exc.what}", where=self.name) from exc

    def _answer(self, out: bytes) -> Any:
        return checked.read_answer(out, self._sha, where=self.name, tail=self.transport.tail)

    def run(
        self,
        path: str | Path,
        *,
        timeout: float = 30.0,
        on_output: Callable[[str], None] | None = None,
    ) -> str:
        """Run a local Python file on the board (without copying it there)."""
        return self.exec(Path(path).read_text(), timeout=timeout, on_output=on_output)

    @action("identity")
    def identity(self, *, refresh: bool = False) -> Identity:
        """Implementation, ``os.uname()`` and ``machine.unique_id()`` as hex (cached)."""
        if self._identity is None or refresh:
            name, version, machine, platform, uname, uid = self._run_value(boardcode.IDENTITY)
            self._identity = Identity(name, tuple(version), machine, platform, uname, uid)
        return self._identity

    def _run_value(self, body: str, *args: Any, timeout: Deadline | float = 10.0) -> Any:
        """Run a helper that hands one value to ``_o``; return the value, checked."""
        code = helper(body, *args, answer=self._answer_source())
        return self._answer(self.run_helper(code, timeout))

    # -- resets ------------------------------------------------------------------------------

    def soft_reset(self, *, raw: bool = True, timeout: float = 10.0) -> str:
        """Soft-reset; return the boot output (modules, heap and mounts are gone)."""
        return _text(self.repl.soft_reset(raw=raw, timeout=timeout))

    @action("hard_reset")
    def hard_reset(self, *, timeout: float = 20.0) -> None:
        """``machine.reset()``, then re-open the port (it may vanish and come back) and
        re-enter the raw REPL."""
        deadline = as_deadline(timeout)
        self.repl.launch("import machine\nmachine.reset()")
        self.repl.await_reset(deadline.cap(RESET_SIGN))
        self.repl.reconnect(deadline)

    # -- friendly REPL -----------------------------------------------------------------------

    def friendly(self, source: str, *, timeout: float = 10.0) -> FriendlyResult:
        """Type source at the friendly prompt; what a person would see."""
        return self._friendly.type(source, timeout=timeout)

    def play(self, transcript: str, *, timeout: float = 10.0) -> PlayResult:
        """Play a doctest-style transcript on the board (see ``hil.friendly.play``)."""
        return play(self._friendly, transcript, timeout=timeout)

    # -- files -------------------------------------------------------------------------------

    @action("ls")
    def ls(self, path: str = "/") -> list[FileInfo]:
        """Entries of a directory: name, whether it is one, size (0 for directories)."""
        if self.facts.has("os.ilistdir"):
            entries = self._run_value(boardcode.LS, path)
        else:
            dirs = self.facts.has("os.mkdir")
            if not dirs and path.strip("/"):
                raise MissingFeature(f"ls({path!r})", ["os.mkdir"], where=self.name)
            entries = self._run_value(boardcode.LS_PLAIN, path, dirs)
        return [FileInfo(n, d, s) for n, d, s in entries]

    @action("mkdir")
    def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False) -> None:
        if not self.facts.has("os.mkdir"):
            raise MissingFeature(f"mkdir({path!r})", ["os.mkdir"], where=self.name)
        self.repl.exec(helper(boardcode.MKDIR, path, parents, exist_ok))

    @action("rm")
    def rm(self, path: str, *, recursive: bool = False) -> None:
        self.repl.exec(helper(boardcode.RM, self.board_path(path), recursive))

    def sha256(self, path: str) -> str | None:
        """Hex sha256 of a board file, None when it does not exist. Needs ``hashlib`` on the
        board (``MissingFeature`` otherwise): ``checksum`` works on every board."""
        return self.sha256_many([path])[path]

    @action("sha256_many")
    def sha256_many(
        self, paths: Iterable[str], *, timeout: Deadline | float = 60.0
    ) -> dict[str, str | None]:
        if not self.facts.has("hashlib"):
            raise MissingFeature("sha256", ["hashlib"], where=self.name)
        return self._run_value(boardcode.SHA256, list(paths), timeout=timeout)

    def checksum(self, path: str) -> str | None:
        """A board file's checksum token (``sha256:<hex>`` or ``adler32:<hex>:<size>``, see
        ``checksum_kind``; ``hil.encoding.checksum`` gives the same for host bytes), None when
        the file does not exist."""
        return self.checksums([path])[path]

    @action("checksums")
    def checksums(
        self, paths: Iterable[str], *, timeout: Deadline | float = 60.0
    ) -> dict[str, str | None]:
        """``checksum`` of several files in one exec, keyed by the paths given."""
        wanted = list(paths)
        kind = self.checksum_kind
        local = [self.board_path(p) for p in wanted]
        if kind == SHA256:
            answer = self._run_value(boardcode.SHA256, local, timeout=timeout)
        else:
            answer = self._run_value(boardcode.ADLER32, local, self._adler_step, timeout=timeout)
        return {p: board_checksum(answer[q], kind) for p, q in zip(wanted, local, strict=True)}

    @action("get")
    def get(self, path: str, *, timeout: float = 120.0) -> bytes:
        """A board file's content, checked end to end: raw bytes with two escapes where the
        board has ``sys.stdout.buffer``, else base64 with ``binascii``, else ``repr`` lines."""
        style = checked.answer_style(self.facts.features)
        step = GET_CHUNK
        if style == checked.REPR:
            step = max(MIN_CHUNK, min(GET_CHUNK, (self.facts.mem_free or 8 * GET_CHUNK) // 64))
        code = helper(boardcode.get_code(style, self._sha), self.board_path(path), step)
        return self._answer(self.run_helper(code, timeout))

    @action("put")
    def put(
        self,
        source: str | Path | bytes,
        path: str,
        *,
        timeout: Deadline | float | None = None,
        verify: bool = True,
    ) -> None:
        """Write a local file (or bytes) to ``path`` on the board, replacing it atomically
        (``hil.boardput``): a put cut off midway leaves the old file, never a truncated one.

        ``timeout`` bounds the whole call, verification and clean-up included, and defaults to
        what the data needs at a slow 9600 baud plus margin. Each exec is also capped to what
        its own chunk needs at that rate, so a stall is noticed after one chunk's budget.
        ``verify`` compares the board's checksum of the temp file with the data's.
        """
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        deadline = as_deadline(timeout if timeout is not None else 10.0 + len(data) / SLOW_RATE)
        boardput.put(self, data, path, deadline, verify=verify)

    def literal_ok(self) -> bool:
        """Whether the board's lexer keeps 8-bit bytes in bytes literals (probed once: an eval
        of all 256 byte values; a board that rejects it gets base64 or escaped literals)."""
        if self._literal_ok is None:
            sample = bytes(range(256))
            try:
                back = self.repl.eval(bytes_literal(sample))
            except (RemoteError, ProtocolError):  # the board rejects the probe
                back = None
            self._literal_ok = back == sample
            self.repl.eight_bit_literals = self._literal_ok
            self.repl.note(f"8-bit bytes literals {'work' if self._literal_ok else 'fail'}")
        return self._literal_ok

    @action("deploy")
    def deploy(
        self,
        local_dir: str | Path,
        remote_dir: str = "/",
        *,
        exclude: Iterable[str] = ("__pycache__", "*.pyc", ".*"),
    ) -> DeployReport:
        """Copy a local directory tree to the board, skipping files whose checksum already
        matches (one checksum exec for the whole tree, then only what changed)."""
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
        remote = self.checksums(files)
        kind = self.checksum_kind
        made: set[str] = set()
        for path, local in files.items():
            data = local.read_bytes()
            if remote.get(path) == checksum(data, kind):
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
