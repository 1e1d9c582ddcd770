"""Driving a MicroPython REPL: raw REPL, raw-paste, friendly REPL, soft reset, interrupt.

Why this exists when mpremote does: every wait here has a deadline, entering the raw REPL is
retried the way real boards need (interrupt, drain, retry with backoff), failures are typed
(``RemoteError`` for what the board raised, infrastructure errors for the rig, each carrying the
last bytes received) and every byte goes into the transport's transcript.

The protocol, as the board speaks it (see DESIGN.md):

* raw REPL: ``\\x01`` -> ``raw REPL; CTRL-B to exit\\r\\n>``;
* raw-paste: ``\\x05A\\x01`` -> ``R\\x01``, uint16 LE window, ``\\x01``; the window plus that
  ``\\x01`` are two windows of credit; every further ``\\x01`` is one more, a ``\\x04`` from the
  board aborts; after the code the host sends ``\\x04`` and the board acknowledges with ``\\x04``.
  ``R\\x00`` + ``>`` means refused, anything else (``ra...``: the re-printed banner) means the
  firmware predates raw-paste; either way plain raw is used for the rest of the connection;
* plain raw: code, ``\\x04`` -> ``OK``;
* then, for both: stdout, ``\\x04``, stderr (a traceback), ``\\x04``, ``>``. An uncaught
  ``SystemExit`` ends with ``\\x04\\x04`` and a soft reboot instead of ``>``.

The board's stdout is cooked (``\\n`` leaves it as ``\\r\\n``); results here are uncooked back,
which is exact because cooking is a pure ``\\n`` -> ``\\r\\n`` substitution.
"""

from __future__ import annotations

import ast
import enum
import functools
import math
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.deadline import Deadline, as_deadline
from hil.errors import BoardTimeout, LinkError, ProtocolError, RawReplError, RemoteError
from hil.friendly import FriendlyResult, auto_indent, keys_for_line, render_screen
from hil.transcript import Direction
from hil.transport import Transport

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
#: The end of the friendly banner: ``MicroPython v1.xx on <date>; <board> with <mcu>`` line,
#: then this line, then the prompt.
FRIENDLY_BANNER_END = b'Type "help()" for more information.\r\n>>> '
PS1 = b">>> "
PS2 = b"... "

#: Plain raw REPL has no flow control: send in slices with a pause so a UART board's receive
#: buffer cannot overflow (what pyboard.py does; only used when raw-paste is unavailable).
PLAIN_RAW_SLICE = 256
PLAIN_RAW_PAUSE = 0.01


class Mode(enum.Enum):
    """What the host believes the board's REPL is doing."""

    UNKNOWN = "unknown"  # after a failure, a reset or at connect: must re-synchronise
    RAW = "raw"  # at the raw REPL's ``>`` prompt
    FRIENDLY = "friendly"  # at the friendly REPL's ``>>> `` prompt


@dataclass(frozen=True)
class ExecResult:
    """What one execution printed; ``soft_reset`` when it ended in an uncaught SystemExit."""

    stdout: bytes
    stderr: bytes
    soft_reset: bool = False

    def error(self, *, where: str = "") -> RemoteError | None:
        """The board's exception, parsed from the traceback, or None."""
        if not self.stderr:
            return None
        return RemoteError.from_traceback(self.stderr.decode("utf-8", "replace"), where=where)


class Uncooker:
    """Undo the board's ``\\n`` -> ``\\r\\n`` across chunk boundaries (holds back a final CR)."""

    def __init__(self) -> None:
        self._cr = False

    def feed(self, data: bytes) -> bytes:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._cr = True
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        out = b"\r" if self._cr else b""
        self._cr = False
        return out


def uncook(data: bytes) -> bytes:
    """Board stdout back to what the program printed."""
    return data.replace(b"\r\n", b"\n")


def parse_value(text: str) -> Any:
    """A board's ``repr()`` to a Python value: literals only, plus ``inf``/``nan`` floats."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a Python literal: {text[:200]!r}") from exc
    specials = {"inf": math.inf, "nan": math.nan}

    class _Floats(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in specials:
                return ast.copy_location(ast.Constant(specials[node.id]), node)
            return node

    try:
        return ast.literal_eval(_Floats().visit(tree))
    except ValueError as exc:
        raise ValueError(f"not a Python literal: {text[:200]!r}") from exc


@dataclass(frozen=True)
class Exchange:
    """One finished REPL exchange, for observers (reports turn each into a step)."""

    title: str
    sent: bytes
    received: bytes
    seconds: float
    error: BaseException | None


def _observed(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tell ``Repl.observers`` about each call of the decorated method, with its bytes."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def observed(self: Repl, *args: Any, **kwargs: Any) -> Any:
            if not self.observers:
                return method(self, *args, **kwargs)
            tap = self.transport.tap
            mark, start = tap.mark(), time.monotonic()
            result: Any = None
            error: BaseException | None = None
            try:
                result = method(self, *args, **kwargs)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                if error is None and isinstance(result, ExecResult):
                    error = result.error(where=self.where)
                what = args[0] if args and isinstance(args[0], (str, bytes)) else b""
                summary = _summary(what.encode() if isinstance(what, str) else what)
                exchange = Exchange(
                    f"{kind}: {summary}" if summary else kind,
                    tap.payload(Direction.TX, mark),
                    tap.payload(Direction.RX, mark),
                    time.monotonic() - start,
                    error,
                )
                for observer in list(self.observers):
                    observer(exchange)

        return observed

    return wrap


class Repl:
    """The REPL of one board over one transport.

    Timeouts: ``reply_timeout`` bounds each protocol handshake (the board answers those at once);
    ``enter_timeout`` bounds re-synchronising (interrupt, drain, Ctrl-A, with retries); each
    ``exec`` has its own timeout for sending the code, running it and reading its output.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        raw_paste: bool = True,
        reply_timeout: float = 5.0,
        enter_timeout: float = 10.0,
    ) -> None:
        self.transport = transport
        self.mode = Mode.UNKNOWN
        #: None: not tried yet on this connection; False: refused, plain raw from now on.
        self._raw_paste_allowed = raw_paste
        self.raw_paste: bool | None = None if raw_paste else False
        self.window: int | None = None
        self.reply_timeout = reply_timeout
        self.enter_timeout = enter_timeout
        self.auto_indent = True
        #: Input we sent may still be unanswered (after a timeout): re-sync before trusting
        #: the next prompt.
        self._stale_input = False
        #: Called after each exchange (exec, soft reset, friendly input) with an ``Exchange``.
        self.observers: list[Callable[[Exchange], None]] = []

    @property
    def where(self) -> str:
        return self.transport.name

    def note(self, text: str) -> None:
        self.transport.tap.note(text)

    # -- entering the raw REPL ---------------------------------------------------------------

    def enter_raw(self, timeout: Deadline | float | None = None) -> None:
        """Get the board to the raw REPL prompt, from whatever it is doing.

        Each attempt interrupts (Ctrl-C twice: a program, then a half-typed line), drains what
        the board is still printing, sends Ctrl-A and waits for the banner; attempts get longer
        (a board may be booting or running a slow boot.py). On final failure ``RawReplError``
        carries the last bytes received.
        """
        deadline = as_deadline(self.enter_timeout if timeout is None else timeout)
        t = self.transport
        if self.mode is Mode.FRIENDLY:  # cheap path: Ctrl-A on an empty friendly line
            try:
                t.write(b"\x01")
                t.read_until(RAW_PROMPT, deadline=deadline.cap(self.reply_timeout))
                self.mode = Mode.RAW
                return
            except BoardTimeout:
                self.mode = Mode.UNKNOWN
        self.note("enter raw REPL")
        attempt, wait = 0, 0.5
        while True:
            attempt += 1
            try:
                t.write(b"\r\x03\x03")
                t.drain(quiet=0.02 * attempt, deadline=deadline.cap(0.5))
                t.write(b"\r\x01")
                t.read_until(RAW_PROMPT, deadline=deadline.cap(wait))
                if self._stale_input or attempt > 1:
                    self._sync(deadline.cap(max(wait, self.reply_timeout)))
                self.mode = Mode.RAW
                return
            except BoardTimeout as exc:
                self._stale_input = True
                if deadline.expired:
                    self.mode = Mode.UNKNOWN
                    raise RawReplError(
                        f"could not enter the raw REPL in {attempt} attempts "
                        f"within {deadline.seconds:g} s",
                        where=self.where,
                        tail=exc.tail,
                    ) from exc
                wait = min(wait * 2, 4.0)

    def _sync(self, deadline: Deadline) -> None:
        """Make sure no answer to earlier input is still on its way.

        Bytes sent to a board that was busy, hung or rebooting may be processed later and
        answered with banners and prompts that look like fresh ones. A tiny program printing a
        random token (which does not occur in its own source) marks the end of all of that.
        """
        token = secrets.token_hex(6)
        t = self.transport
        self.note("sync: skip answers to earlier input")
        t.write(f"print('hil-sync', '{token[:6]}' + '{token[6:]}')\x04".encode())
        t.read_until(b"OKhil-sync " + token.encode() + b"\r\n\x04\x04>", deadline=deadline)
        self._stale_input = False

    def _ensure_raw(self) -> None:
        if self.mode is not Mode.RAW:
            self.enter_raw()

    # -- executing ---------------------------------------------------------------------------

    @_observed("exec")
    def exec_raw(
        self,
        code: str | bytes,
        *,
        timeout: Deadline | float = 10.0,
        on_output: Callable[[bytes], None] | None = None,
    ) -> ExecResult:
        """Run code in the raw REPL and return its stdout and stderr (uncooked).

        ``on_output`` receives stdout as it arrives (then ``ExecResult.stdout`` is empty: a
        streamed program may print more than fits in memory). Never raises for the board's
        exceptions (see ``exec``); raises ``BoardTimeout`` when the code does not finish in
        time (the board may still be running it: ``interrupt()`` recovers it) and
        infrastructure errors for the link and protocol.
        """
        data = code.encode() if isinstance(code, str) else bytes(code)
        deadline = as_deadline(timeout)
        self._ensure_raw()
        self.note(f"exec {_summary(data)}")
        self.mode = Mode.UNKNOWN  # until the prompt is back
        try:
            aborted = self._send_code(data, deadline)
            result = self._collect(deadline, on_output)
            if aborted and not _is_compile_error(result):
                # The board stopped reading mid-paste for a reason other than the code itself:
                # the code never ran, so sending it again the plain way is safe.
                self.note("raw-paste aborted by the board: plain raw REPL for this connection")
                self.raw_paste = False
                self.mode = Mode.UNKNOWN
                self._plain_raw(data, deadline)
                result = self._collect(deadline, on_output)
            return result
        except BoardTimeout as exc:
            self._stale_input = True
            raise BoardTimeout(
                f"code did not finish within {deadline.seconds:g} s ({exc.what})",
                where=self.where,
                tail=exc.tail,
            ) from exc

    def exec(
        self,
        code: str | bytes,
        *,
        timeout: Deadline | float = 10.0,
        on_output: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """Run code; return its stdout; raise ``RemoteError`` if it raised on the board."""
        result = self.exec_raw(code, timeout=timeout, on_output=on_output)
        error = result.error(where=self.where)
        if error is not None:
            raise error
        return result.stdout

    def eval(self, expression: str | bytes, *, timeout: Deadline | float = 10.0) -> Any:
        """Evaluate an expression on the board and return its value (via ``repr`` and a literal
        parse on the host: exact for numbers, strings, bytes, and containers of them)."""
        expr = expression.encode() if isinstance(expression, str) else expression
        out = self.exec(b"print(repr(" + expr + b"))", timeout=timeout)
        text = out.decode("utf-8", "replace")
        try:
            return parse_value(text)
        except ValueError as exc:
            raise ProtocolError(
                f"eval({_summary(expr, 60)}) did not return a literal: {exc}", where=self.where
            ) from exc

    @_observed("launch")
    def launch(self, code: str | bytes, *, timeout: Deadline | float = 5.0) -> None:
        """Send code and do not wait for it to finish (``machine.reset()``, a server loop).

        Nothing after the code is read: a resetting board may never acknowledge it (its last
        bytes die with its USB). The mode becomes unknown.
        """
        data = code.encode() if isinstance(code, str) else bytes(code)
        self._ensure_raw()
        self.note(f"launch {_summary(data)}")
        self.mode = Mode.UNKNOWN
        self._send_code(data, as_deadline(timeout), wait=False)

    def _send_code(self, data: bytes, deadline: Deadline, *, wait: bool = True) -> bool:
        """Hand the code to the board by raw-paste, or plain raw when raw-paste is unavailable;
        True when the board aborted a raw-paste before taking all of the code. With ``wait``
        False the board's acknowledgement of the end of the code is not read.

        An unexpected answer to the raw-paste request may just mean the board is not where we
        think (it was reset behind our back): re-synchronise once before concluding that the
        firmware lacks raw-paste.
        """
        t = self.transport
        for attempt in (1, 2):
            if self.raw_paste is False:
                self._plain_raw(data, deadline, wait=wait)
                return False
            t.write(b"\x05A\x01")
            head = t.read_exact(2, deadline=deadline.cap(self.reply_timeout))
            if head == b"R\x01":
                self.raw_paste = True
                return self._raw_paste(data, deadline, wait=wait)
            if head == b"R\x00":
                self.note("raw-paste refused: plain raw REPL for this connection")
                self.raw_paste = False
                self._expect_raw_prompt_after_refusal(deadline)
                continue
            # Old firmware treats "\x05A" as code and "\x01" as "reset raw REPL": it re-prints
            # the banner (so the answer starts with "ra").
            t.unread(head)
            try:
                t.read_until(RAW_PROMPT, deadline=deadline.cap(min(1.0, self.reply_timeout)))
            except BoardTimeout:
                if attempt == 2:
                    raise RawReplError(
                        "board does not answer the raw-paste request", where=self.where, tail=t.tail
                    ) from None
                self.mode = Mode.UNKNOWN
                self.enter_raw()
                continue
            self.note("firmware predates raw-paste: plain raw REPL for this connection")
            self.raw_paste = False
        self._plain_raw(data, deadline, wait=wait)
        return False

    def _expect_raw_prompt_after_refusal(self, deadline: Deadline) -> None:
        """After ``R\\x00`` a board prints ``>``; tolerate one that does not."""
        t = self.transport
        try:
            got = t.read_exact(1, deadline=deadline.cap(min(1.0, self.reply_timeout)))
        except BoardTimeout:
            return
        if got != b">":
            t.unread(got)

    def _raw_paste(self, data: bytes, deadline: Deadline, *, wait: bool = True) -> bool:
        """Send code within the board's flow-control windows (it acknowledges each window
        consumed with ``\\x01``; a ``\\x04`` means it stopped reading, e.g. on a SyntaxError)."""
        t = self.transport
        reply = deadline.cap(self.reply_timeout)
        (window,) = struct.unpack("<H", t.read_exact(2, deadline=reply))
        if window == 0:
            raise ProtocolError("raw-paste window of 0 bytes", where=self.where, tail=t.tail)
        self.window = window
        credit = window
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            incoming = t.read_available() if credit else t.read_some(deadline=deadline)
            for i, byte in enumerate(incoming):
                if byte == 0x01:
                    credit += window
                elif byte == 0x04:  # the board aborted: acknowledge; its report follows
                    t.unread(incoming[i + 1 :])
                    t.write(b"\x04")
                    return True
                else:
                    t.unread(incoming[i:])
                    raise ProtocolError(
                        f"unexpected byte {bytes([byte])!r} during raw-paste",
                        where=self.where,
                        tail=t.tail,
                    )
            if credit:
                n = min(credit, len(data) - sent)
                t.write(bytes(view[sent : sent + n]))
                sent += n
                credit -= n
        t.write(b"\x04")
        if not wait:
            return False
        ack = t.read_until(b"\x04", deadline=deadline)
        if ack.strip(b"\x01") != b"\x04":
            raise ProtocolError(
                f"raw-paste end not acknowledged, got {ack[-40:]!r}", where=self.where, tail=t.tail
            )
        return False

    def _plain_raw(self, data: bytes, deadline: Deadline, *, wait: bool = True) -> None:
        t = self.transport
        for i in range(0, len(data), PLAIN_RAW_SLICE):
            if i:
                time.sleep(PLAIN_RAW_PAUSE)
            t.write(data[i : i + PLAIN_RAW_SLICE])
        t.write(b"\x04")
        if not wait:
            return
        try:
            head = t.read_until(b"OK", deadline=deadline.cap(self.reply_timeout))
        except BoardTimeout as exc:
            raise RawReplError(
                "board did not accept the code (no b'OK')", where=self.where, tail=exc.tail
            ) from exc
        if head[:-2].strip(b">"):  # a stray prompt is harmless, anything else is not
            raise RawReplError(
                f"board did not accept the code (answered {head[-40:]!r})",
                where=self.where,
                tail=t.tail,
            )

    def _collect(self, deadline: Deadline, on_output: Callable[[bytes], None] | None) -> ExecResult:
        """Read stdout, stderr and the prompt (or the soft reboot of an uncaught SystemExit)."""
        t = self.transport
        if on_output is None:
            stdout = uncook(t.read_until(b"\x04", deadline=deadline)[:-1])
        else:
            cooker = Uncooker()
            t.read_until(b"\x04", deadline=deadline, on_data=lambda c: on_output(cooker.feed(c)))
            if tail := cooker.flush():
                on_output(tail)
            stdout = b""
        stderr = uncook(t.read_until(b"\x04", deadline=deadline)[:-1])
        after = t.read_exact(1, deadline=deadline.cap(self.reply_timeout))
        if after == b">":
            self.mode = Mode.RAW
            return ExecResult(stdout, stderr)
        t.unread(after)
        self.note("uncaught SystemExit: the board soft-resets")
        self._await_reboot(deadline.cap(max(self.enter_timeout, deadline.remaining)))
        return ExecResult(stdout, stderr, soft_reset=True)

    def _await_reboot(self, deadline: Deadline) -> bytes:
        """After a soft reset: read the reboot and boot output up to the REPL's prompt."""
        t = self.transport
        got = t.read_until((RAW_PROMPT, FRIENDLY_BANNER_END), deadline=deadline)
        self.mode = Mode.RAW if got.endswith(RAW_PROMPT) else Mode.FRIENDLY
        if SOFT_REBOOT not in got:
            self.note("prompt came back without 'MPY: soft reboot'")
        return got

    # -- interrupting and resetting ----------------------------------------------------------

    def send_interrupt(self) -> None:
        """Send Ctrl-C now; safe from another thread or an ``on_output`` callback while an
        ``exec`` is reading (it then ends with ``RemoteError`` KeyboardInterrupt)."""
        self.transport.write(b"\x03")

    def interrupt(self, timeout: Deadline | float = 5.0) -> bytes:
        """Stop whatever the board runs and get the raw prompt back; return what it printed.

        For a program that outlived its ``exec`` deadline: Ctrl-C ends it with a
        KeyboardInterrupt, whose framed report ends in ``\\x04>``. When that does not come (the
        program swallows KeyboardInterrupt, or the board was elsewhere) fall back to entering
        the raw REPL from scratch.
        """
        if self.mode is Mode.RAW:
            return b""  # idle at the prompt: nothing runs
        deadline = as_deadline(timeout)
        t = self.transport
        self.note("interrupt")
        t.write(b"\x03")
        try:
            got = t.read_until(b"\x04>", deadline=deadline.cap(min(2.0, self.reply_timeout)))
        except BoardTimeout:
            self.mode = Mode.UNKNOWN
            self.enter_raw(deadline)
            return b""
        self.mode = Mode.RAW
        self._stale_input = False
        return uncook(got[:-2])

    @_observed("soft reset")
    def soft_reset(self, *, raw: bool = True, timeout: Deadline | float = 10.0) -> bytes:
        """Soft-reset the board (heap, modules and mounts are cleared) and return the boot
        output (boot.py; main.py too when ``raw`` is False, as a board runs it only then).

        Accepts both forms of the answer: ``OK\\r\\nMPY: soft reboot\\r\\n`` ... raw banner from
        the raw REPL, ``MPY: soft reboot\\r\\n`` ... friendly banner from the friendly REPL.
        """
        deadline = as_deadline(timeout)
        if raw:
            self._ensure_raw()
        elif self.mode is not Mode.FRIENDLY:
            self.enter_friendly()
        self.note("soft reset")
        self.mode = Mode.UNKNOWN
        t = self.transport
        t.write(b"\x04")
        try:
            got = self._await_reboot(deadline)
        except BoardTimeout as exc:
            raise BoardTimeout(
                f"no prompt within {deadline.seconds:g} s after a soft reset",
                where=self.where,
                tail=exc.tail,
            ) from exc
        start = got.find(SOFT_REBOOT)
        body = got[start + len(SOFT_REBOOT) :] if start >= 0 else got
        for end in (RAW_PROMPT, FRIENDLY_BANNER_END):
            if body.endswith(end):
                body = body[: -len(end)]
        if self.mode is Mode.FRIENDLY:
            body = body[: body.rfind(b"MicroPython ")] if b"MicroPython " in body else body
        return uncook(body)

    def reconnect(self, timeout: Deadline | float = 20.0) -> None:
        """Re-open the port and re-enter the raw REPL, retrying until the deadline: after a
        hard reset the port may vanish, come back, or be the dying old one for a moment."""
        deadline = as_deadline(timeout)
        self.mode = Mode.UNKNOWN
        self.raw_paste = None if self._raw_paste_allowed else False
        self._stale_input = True
        while True:
            try:
                self.transport.reopen(deadline)
                self.enter_raw(deadline.cap(max(1.0, min(5.0, deadline.remaining))))
                return
            except (LinkError, RawReplError, BoardTimeout) as exc:
                if deadline.expired:
                    raise LinkError(
                        f"board did not come back within {deadline.seconds:g} s: {exc.what}",
                        where=self.where,
                        tail=exc.tail,
                    ) from exc
                time.sleep(min(0.1, deadline.remaining))

    # -- the friendly REPL -------------------------------------------------------------------

    def enter_friendly(self, timeout: Deadline | float | None = None) -> bytes:
        """Switch to the friendly REPL and return its banner line."""
        deadline = as_deadline(self.enter_timeout if timeout is None else timeout)
        if self.mode is not Mode.RAW:
            self.enter_raw(deadline)
        t = self.transport
        t.write(b"\x02")
        got = t.read_until(PS1, deadline=deadline.cap(self.reply_timeout))
        self.mode = Mode.FRIENDLY
        return uncook(got[: -len(PS1)]).strip()

    @_observed("friendly")
    def friendly(self, source: str, *, timeout: Deadline | float = 10.0) -> FriendlyResult:
        """Type source into the friendly REPL as a person would; return what the screen shows.

        Lines are typed one at a time after their prompt. The board auto-indents after a line
        ending in ``:`` (and keeps the indentation of the line before), so the host types only
        the indentation still missing, or backspaces (each removes up to 4 auto-inserted
        spaces). A compound statement is finished with empty lines, as at a keyboard.
        """
        deadline = as_deadline(timeout)
        if self.mode is not Mode.FRIENDLY:
            self.enter_friendly()
        self.note(f"friendly {_summary(source.encode())}")
        self.mode = Mode.UNKNOWN
        t = self.transport
        lines = source.rstrip("\n").split("\n") if source.strip() else [""]
        typed = ""  # what the board has accumulated so far ("" at the primary prompt)
        screen = bytearray(PS1)
        pending = list(lines)
        closers = 0
        while True:
            line = pending.pop(0) if pending else ""
            if not pending and line == "" and typed and closers > 3:
                raise ProtocolError(
                    "friendly REPL keeps asking for more input", where=self.where, tail=t.tail
                )
            indent = auto_indent(typed) if (typed and self.auto_indent) else ""
            if indent:
                indent = self._read_auto_indent(indent, deadline)
                screen += indent.encode()
            keys = keys_for_line(line, len(indent))
            t.write(keys.encode() + b"\r")
            answer = t.read_until(b"\r\n", deadline=deadline)  # the echo of Enter
            screen += answer
            output, prompt = self._read_prompt(deadline)
            screen += output + prompt
            if prompt == PS2:
                typed += line + "\n"
                if not pending:
                    closers += 1
                elif _ends_block(line, pending[0]):
                    pending.insert(0, "")  # a dedent to column 0: an empty line ends the block
                continue
            if pending:
                # the statement ended before the source did: keep typing (a person would)
                typed = ""
                continue
            self.mode = Mode.FRIENDLY
            return FriendlyResult(
                screen=render_screen(bytes(screen[: -len(PS1)])),
                output=render_screen(output),
            )

    def _read_auto_indent(self, expected: str, deadline: Deadline) -> str:
        """Consume the spaces the board inserted after ``... `` (the rule is predictable, so
        no waiting for silence: only a board without auto-indent costs a short wait, once)."""
        t = self.transport
        try:
            got = t.read_exact(len(expected), deadline=deadline.cap(0.5))
        except BoardTimeout:
            got = t.read_available()
            if not got.strip(b" "):
                self.auto_indent = False
                return got.decode()
            t.unread(got)
            return ""
        if got.strip(b" "):
            t.unread(got)
            return ""
        return got.decode()

    def _read_prompt(self, deadline: Deadline) -> tuple[bytes, bytes]:
        """Read the board's answer to a line up to the next prompt: (output, prompt).

        A prompt normally starts a line; ``... `` may be followed by auto-indent spaces, which
        are left unread for ``_read_auto_indent``. Output that does not end in a newline runs
        into the prompt (``x>>> ``): accepted when the board then stays silent, as it does at
        a prompt.
        """
        t = self.transport
        buf = bytearray(t.read_available())
        while True:
            found = _find_prompt(buf)
            if found is not None:
                at, prompt = found
                certain = at == 0 or buf[at - 1 : at] == b"\n"
                if certain or not (extra := t.drain(quiet=0.1, deadline=deadline.cap(0.2))):
                    t.unread(bytes(buf[at + len(prompt) :]))
                    return bytes(buf[:at]), prompt
                buf += extra
                continue
            buf += t.read_some(deadline=deadline)


_BLOCK_CONTINUATIONS = ("else", "elif", "except", "finally", "case")


def _ends_block(line: str, following: str) -> bool:
    """Whether a person would press Enter on an empty line between these two source lines."""
    if not line.startswith((" ", "\t")) or not following.strip():
        return False
    if following.startswith((" ", "\t", ")", "]", "}")):
        return False
    word = following.split(None, 1)[0].rstrip(":")
    return word not in _BLOCK_CONTINUATIONS


def _find_prompt(buf: bytearray) -> tuple[int, bytes] | None:
    """Where a prompt ends the buffer: ``>>> `` last, or ``... `` followed only by spaces."""
    if buf.endswith(PS1):
        return len(buf) - len(PS1), PS1
    body = buf.rstrip(b" ")
    if len(body) < len(buf) and body.endswith(b"..."):
        return len(body) - 3, PS2
    return None


def _is_compile_error(result: ExecResult) -> bool:
    """Whether the board rejected the code itself (then resending it cannot help)."""
    error = result.error()
    return error is not None and error.type_name in ("SyntaxError", "IndentationError")


def _summary(data: bytes, limit: int = 120) -> str:
    """A one-line preview of code for the transcript."""
    text = data[:limit].decode("utf-8", "replace").replace("\n", "\\n")
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")
