"""Driving a MicroPython REPL: the raw REPL, soft reset, interrupt, and switching modes.

Sending code (raw-paste or plain raw) is ``hil.rawpaste``; which form it takes (checked on links
without flow control, ``hil.checked``) is ``hil.replrun``; reading an execution's answer, even
one whose output holds ``\\x04``, is ``hil.replread``; what the board printed means
``hil.replparse``; typing into the friendly REPL as a person would is ``hil.friendly``, built on
this module's public interface.

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

import enum
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hil import checked, replrun
from hil.deadline import Deadline, as_deadline
from hil.errors import BoardTimeout, LinkError, ProtocolError, RawReplError, seconds_text
from hil.rawpaste import RAW_BANNER, RAW_PROMPT, CodeSender
from hil.replparse import (
    Exchange,
    ExecResult,
    Uncooker,
    observed_as,
    parse_value,
    summary,
    uncook,
)
from hil.replread import SOFT_REBOOT
from hil.transcript import Direction
from hil.transport import Transport

__all__ = [
    "FRIENDLY_BANNER_END",
    "PS1",
    "PS2",
    "RAW_BANNER",
    "RAW_PROMPT",
    "SOFT_REBOOT",
    "Exchange",
    "ExecResult",
    "Mode",
    "Repl",
    "Uncooker",
    "parse_value",
    "uncook",
]

T = TypeVar("T")
#: How often code that provably did not run (its transfer was damaged) is sent again: a lossy
#: link under load (a UART with no flow control) can damage two transfers in a row.
RESENDS = 2

#: The end of the friendly banner: ``MicroPython v1.xx on <date>; <board> with <mcu>`` line,
#: then this line, then the prompt.
FRIENDLY_BANNER_END = b'Type "help()" for more information.\r\n>>> '
PS1 = b">>> "
PS2 = b"... "


class Mode(enum.Enum):
    """What the host believes the board's REPL is doing."""

    UNKNOWN = "unknown"  # after a failure, a reset or at connect: must re-synchronise
    RAW = "raw"  # at the raw REPL's ``>`` prompt
    FRIENDLY = "friendly"  # at the friendly REPL's ``>>> `` prompt


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
        self.sender = CodeSender(self, allowed=raw_paste)
        self.reply_timeout = reply_timeout
        self.enter_timeout = enter_timeout
        #: Input we sent may still be unanswered (after a timeout): re-sync before trusting
        #: the next prompt.
        self._stale_input = False
        #: The board's lexer keeps 8-bit bytes in bytes literals (``Board`` sets it once proven):
        #: checked code then travels denser.
        self.eight_bit_literals = False
        #: Longest code sent checked on a plain raw link (``Board`` sets it from the free
        #: heap); None: no limit.
        self.check_limit: int | None = None
        #: Whether a user's code is checked too on a plain raw link: not until ``Board`` knows
        #: the board is bigger than a micro:bit, whose C stack cannot afford the ``exec``.
        self.check_user_code = False
        #: Whether the transcript said since the last reset that code goes unchecked (once is
        #: enough: ``hil.replrun``).
        self.said_unchecked = False
        #: Called after each exchange (exec, soft reset, friendly input) with an ``Exchange``.
        self.observers: list[Callable[[Exchange], None]] = []

    @property
    def where(self) -> str:
        return self.transport.name

    def note(self, text: str) -> None:
        self.transport.tap.note(text)

    @property
    def raw_paste(self) -> bool | None:
        """None: not tried yet on this connection; True: in use; False: plain raw from now on
        (refused, aborted, or firmware that predates it)."""
        return self.sender.raw_paste

    @property
    def window(self) -> int | None:
        """The board's raw-paste window, once granted."""
        return self.sender.window

    def observed(self, kind: str, what: str | bytes, call: Callable[[], T]) -> T:
        """Run ``call`` as one exchange: observers get its bytes, time and error (the board's
        exception too, when ``call`` returns an ``ExecResult``). Drivers built on the REPL
        (the friendly driver) report their exchanges through this."""
        if not self.observers:
            return call()
        tap = self.transport.tap
        mark, start = tap.mark(), time.monotonic()
        result: Any = None
        error: BaseException | None = None
        try:
            result = call()
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            if error is None and isinstance(result, ExecResult):
                error = result.error(where=self.where)
            text = summary(what.encode() if isinstance(what, str) else what)
            exchange = Exchange(
                f"{kind}: {text}" if text else kind,
                tap.payload(Direction.TX, mark),
                tap.payload(Direction.RX, mark),
                time.monotonic() - start,
                error,
            )
            for observer in list(self.observers):
                observer(exchange)

    def resync(self) -> None:
        """Forget where the board is and enter the raw REPL from scratch."""
        self.mode = Mode.UNKNOWN
        self.enter_raw()

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
        self.note("sync: skip answers to earlier input")
        self.sync(deadline)

    def sync(self, deadline: Deadline) -> bytes:
        """Make sure no answer to earlier input is still on its way; return what came first.

        Bytes sent to a board that was busy, hung or rebooting may be processed later and
        answered with banners and prompts that look like fresh ones. A tiny program printing a
        random token (which does not occur in its own source) marks the end of all of that:
        the board runs it only once it is back at its raw prompt.
        """
        # a sum of two numbers: no string of the token in the source (MicroPython interns
        # short string literals for good, and a micro:bit has 7 kB of heap)
        a, b = (secrets.randbelow(1 << 28) + (1 << 28) for _ in "ab")  # small ints: sum < 2**30
        t = self.transport
        t.write(f"print('hil-sync', {a} + {b})\x04".encode())
        end = b"OKhil-sync %d\r\n\x04\x04>" % (a + b)
        got = t.read_until(end, deadline=deadline)
        self._stale_input = False
        self.mode = Mode.RAW
        return got[: -len(end)]

    def at_prompt(self) -> None:
        """The board's answer ended at its raw prompt."""
        self.mode = Mode.RAW

    def forget_mode(self) -> None:
        """The board is busy with our input: not at a prompt."""
        self.mode = Mode.UNKNOWN

    def _ensure_raw(self, deadline: Deadline | None = None) -> None:
        if self.mode is not Mode.RAW:
            self.enter_raw(None if deadline is None else deadline.cap(self.enter_timeout))

    # -- executing ---------------------------------------------------------------------------

    @observed_as("exec")
    def exec_raw(
        self,
        code: str | bytes,
        *,
        timeout: Deadline | float = 10.0,
        on_output: Callable[[bytes], None] | None = None,
        checked_only: bool | None = False,
    ) -> ExecResult:
        """Run code in the raw REPL and return its stdout and stderr (uncooked).

        On a link without flow control the code travels checked (``hil.checked``); where the
        board has no heap for that (about one more copy of the code), it is sent again as it
        is, noted in the transcript, unless ``checked_only`` (then the ``MemoryError`` stands);
        ``checked_only=None`` prefers the checked form even where a user's code goes unchecked
        (``check_user_code``), falling back only for lack of heap.

        ``on_output`` receives stdout as it arrives (then ``ExecResult.stdout`` is empty: a
        streamed program may print more than fits in memory). Never raises for the board's
        exceptions (see ``exec``); raises ``BoardTimeout`` when the code does not finish in
        time (the board may still be running it: ``interrupt()`` recovers it) and
        infrastructure errors for the link and protocol.
        """
        data = code.encode() if isinstance(code, str) else bytes(code)
        deadline = as_deadline(timeout)
        for attempt in range(1, RESENDS + 2):
            self._ensure_raw(deadline)
            self.note(f"exec {summary(data)}")
            self.mode = Mode.UNKNOWN  # until the prompt is back
            try:
                return replrun.run(self, data, deadline, on_output, checked_only)
            except checked.CodeDamaged as exc:
                # a damaged transfer may have left a remnant that the board answers later:
                # re-synchronise before anything else is sent
                self._stale_input = True
                self.mode = Mode.UNKNOWN
                if not exc.resend_safe or attempt > RESENDS or deadline.expired:
                    raise
                self.note(f"{exc.what}: it did not run, so it is sent again")
            except (ProtocolError, RawReplError, LinkError):
                self._stale_input = True  # answers may still be on their way
                raise
            except BoardTimeout as exc:
                self._stale_input = True
                within = seconds_text(deadline.seconds)
                what = (
                    f"the board did not take the code within {within}: none of it ran"
                    if isinstance(exc, replrun.CodeNotTaken)
                    else f"code did not finish within {within}"
                )
                raise BoardTimeout(what, where=self.where, tail=exc.tail, since=exc.since) from exc
        raise AssertionError("unreachable")

    def exec(
        self,
        code: str | bytes,
        *,
        timeout: Deadline | float = 10.0,
        on_output: Callable[[bytes], None] | None = None,
        checked_only: bool | None = False,
    ) -> bytes:
        """Run code; return its stdout; raise ``RemoteError`` if it raised on the board."""
        result = self.exec_raw(
            code, timeout=timeout, on_output=on_output, checked_only=checked_only
        )
        error = result.error(where=self.where)
        if error is not None:
            raise error
        return result.stdout

    def eval(self, expression: str | bytes, *, timeout: Deadline | float = 10.0) -> Any:
        """Evaluate an expression on the board and return its value (via ``repr`` and a literal
        parse on the host: exact for numbers, strings, bytes, and containers of them). The
        answer is not checked: ``Board.eval`` checks it end to end (``hil.checked``)."""
        expr = expression.encode() if isinstance(expression, str) else expression
        out = self.exec(b"print(repr(" + expr + b"))", timeout=timeout)
        text = out.decode("utf-8", "replace")
        try:
            return parse_value(text)
        except ValueError as exc:
            raise ProtocolError(
                f"eval({summary(expr, 60)}) did not return a literal: {exc}", where=self.where
            ) from exc

    @observed_as("launch")
    def launch(self, code: str | bytes, *, timeout: Deadline | float = 5.0) -> None:
        """Send code and do not wait for it to finish (``machine.reset()``, a server loop).

        The board acknowledges the end of the code before it runs it (``\\x04`` after a
        raw-paste, ``OK`` in plain raw): that is waited for, briefly, so the code is known to
        be in before the caller closes the port (closing a pty at once can drop the last bytes
        unread). Nothing after it is read, and a missing acknowledgement is only noted: a
        resetting board's last bytes may die with its USB. The mode becomes unknown.
        """
        data = code.encode() if isinstance(code, str) else bytes(code)
        deadline = as_deadline(timeout)
        self._ensure_raw(deadline)
        self.note(f"launch {summary(data)}")
        self.mode = Mode.UNKNOWN
        own = replrun.own_form(self)
        wrap = own if checked.has_control(data) else None
        sent = self.sender.send(data, deadline, wait=False, plain_form=own, paste_form=wrap)
        if sent.aborted:
            return  # the board aborted the paste: it answers with an error report, not an ack
        ack = b"\x04" if self.sender.raw_paste else b"OK"
        if sent.wrapped:  # checked code marks the passed check: the code is about to run
            ack += checked.MARK
        try:
            self.transport.read_until(ack, deadline=deadline.cap(min(1.0, self.reply_timeout)))
        except (BoardTimeout, LinkError):
            self.note("launched code not acknowledged (the board may be resetting)")

    def await_reboot(self, deadline: Deadline) -> bytes:
        """After a soft reset: read the reboot and boot output up to the REPL's prompt."""
        t = self.transport
        got = t.read_until((RAW_PROMPT, FRIENDLY_BANNER_END), deadline=deadline)
        self.mode = Mode.RAW if got.endswith(RAW_PROMPT) else Mode.FRIENDLY
        if SOFT_REBOOT not in got:
            self.note("prompt came back without 'soft reboot'")
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

    @observed_as("soft reset")
    def soft_reset(self, *, raw: bool = True, timeout: Deadline | float = 10.0) -> bytes:
        """Soft-reset the board (heap, modules and mounts are cleared) and return the boot
        output (boot.py; main.py too when ``raw`` is False, as a board runs it only then).

        Accepts both forms of the answer: ``OK\\r\\nMPY: soft reboot\\r\\n`` ... raw banner from
        the raw REPL, ``MPY: soft reboot\\r\\n`` ... friendly banner from the friendly REPL, with
        or without the ``MPY: `` of current firmware.
        """
        deadline = as_deadline(timeout)
        if raw:
            self._ensure_raw(deadline)
        elif self.mode is not Mode.FRIENDLY:
            self.enter_friendly(deadline.cap(self.enter_timeout))
        self.note("soft reset")
        self.mode = Mode.UNKNOWN
        self.said_unchecked = False
        t = self.transport
        t.write(b"\x04")
        try:
            got = self.await_reboot(deadline)
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

    def await_reset(self, timeout: Deadline | float = 5.0) -> bool:
        """After launching a reset: wait until the board shows that it went (the link fails,
        or it prints anything: boot ROM text, a ``\\x00``, its banner), so that re-entering
        the raw REPL cannot interrupt a reset still on its way. True when it showed; a board
        that stays silent (a UART board whose main.py prints nothing) is only noted."""
        try:
            self.transport.read_some(deadline=timeout)
        except LinkError:
            return True
        except BoardTimeout:
            self.note("no sign of the reset from the board")
            return False
        return True

    def reconnect(self, timeout: Deadline | float = 20.0) -> None:
        """Re-open the port and re-enter the raw REPL, retrying until the deadline: after a
        hard reset the port may vanish, come back, or be the dying old one for a moment."""
        deadline = as_deadline(timeout)
        self.mode = Mode.UNKNOWN
        self.sender.reset()
        self._stale_input = True
        self.said_unchecked = False
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
