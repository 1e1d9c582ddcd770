"""Handing code to a board at the raw REPL prompt: raw-paste with flow control, or plain raw.

Its own module because it is the one part of the REPL protocol that differs between firmware
generations, and the one that must degrade gracefully: a board may accept raw-paste
(``R\\x01``), refuse it (``R\\x00``), or predate it and answer with its raw banner again (the
micro:bit's MicroPython 1.9.2 does), and a link may lose bytes mid-paste. Whatever happens, the
choice is made once per connection and the code is sent one way or the other.

The raw-paste protocol: ``\\x05A\\x01`` -> ``R\\x01``, uint16 LE window, ``\\x01``; the window
plus that ``\\x01`` are two windows of credit; every further ``\\x01`` is one more, a ``\\x04``
from the board aborts; after the code the host sends ``\\x04`` and the board acknowledges with
``\\x04``. Plain raw: code, ``\\x04`` -> ``OK``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import NamedTuple, NoReturn, Protocol

from hil.deadline import Deadline
from hil.errors import BoardTimeout, ProtocolError, RawReplError
from hil.transport import Transport

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"

#: Plain raw REPL has no flow control: send in slices with a pause so a UART board's receive
#: buffer cannot overflow (only used when raw-paste is unavailable). Small slices, because a
#: board busy collecting garbage stops draining its buffer: measured on the micro:bit's
#: MicroPython 1.9.2, 256-byte slices lost a byte in about one of six 1.2 kB execs, 32-byte
#: slices none in hundreds. 32 bytes per 2 ms is still faster than a 115200-baud line.
PLAIN_RAW_SLICE = 32
PLAIN_RAW_PAUSE = 0.002


class Session(Protocol):
    """What the sender needs of the REPL session that owns it."""

    transport: Transport
    reply_timeout: float

    @property
    def where(self) -> str: ...

    def note(self, text: str) -> None: ...

    def resync(self) -> None:
        """Get back to an idle raw prompt from wherever the board is."""

    def sync(self, deadline: Deadline) -> bytes:
        """Wait until the board answered all earlier input; return what came first."""


class Sent(NamedTuple):
    """How code was handed over: ``aborted`` when the board stopped a raw-paste before taking
    all of it, ``wrapped`` when the checked form (``hil.checked.wrap``) was sent."""

    aborted: bool
    wrapped: bool


class CodeSender:
    """Sends code at the raw prompt, remembering per connection whether raw-paste works.

    ``raw_paste`` is None until tried, True once the board granted it, False once it refused
    or aborted (plain raw from then on); ``window`` is the board's raw-paste window.
    """

    def __init__(self, session: Session, *, allowed: bool = True) -> None:
        self.session = session
        self.allowed = allowed
        self.raw_paste: bool | None = None if allowed else False
        self.window: int | None = None

    def reset(self) -> None:
        """A new connection: the board may be another firmware now."""
        self.raw_paste = None if self.allowed else False

    def send(
        self,
        data: bytes,
        deadline: Deadline,
        *,
        wait: bool = True,
        plain_form: Callable[[bytes], bytes] | None = None,
        paste_form: Callable[[bytes], bytes] | None = None,
    ) -> Sent:
        """Hand the code to the board by raw-paste, or plain raw when raw-paste is unavailable.
        With ``wait`` False the board's acknowledgement of the end of the code is not read.

        ``plain_form`` and ``paste_form`` turn the code into what is sent that way (the checked
        form of ``hil.checked``: on plain raw always, as it has no flow control; by raw-paste
        for code holding control bytes); ``Sent.wrapped`` says whether one was used.

        An unexpected answer to the raw-paste request may just mean the board is not where we
        think (it was reset behind our back): re-synchronise once before concluding that the
        firmware lacks raw-paste.
        """
        s = self.session
        t = s.transport
        for attempt in (1, 2):
            if self.raw_paste is False:
                break
            t.write(b"\x05A\x01")
            head = t.read_exact(2, deadline=deadline.cap(s.reply_timeout))
            if head == b"R\x01":
                self.raw_paste = True
                payload = paste_form(data) if paste_form is not None else data
                return Sent(self._paste(payload, deadline, wait=wait), paste_form is not None)
            if head == b"R\x00":
                s.note("raw-paste refused: plain raw REPL for this connection")
                self.raw_paste = False
                self._expect_prompt_after_refusal(deadline)
                break
            # Old firmware treats "\x05A" as code and "\x01" as "reset raw REPL": it re-prints
            # the banner (so the answer starts with "ra").
            t.unread(head)
            try:
                t.read_until(RAW_PROMPT, deadline=deadline.cap(min(1.0, s.reply_timeout)))
            except BoardTimeout:
                if attempt == 2:
                    raise RawReplError(
                        "board does not answer the raw-paste request", where=s.where, tail=t.tail
                    ) from None
                s.resync()
                continue
            s.note("firmware predates raw-paste: plain raw REPL for this connection")
            self.raw_paste = False
        self.plain(plain_form(data) if plain_form is not None else data, deadline, wait=wait)
        return Sent(False, plain_form is not None)

    def _expect_prompt_after_refusal(self, deadline: Deadline) -> None:
        """After ``R\\x00`` a board prints ``>``; tolerate one that does not."""
        t = self.session.transport
        try:
            got = t.read_exact(1, deadline=deadline.cap(min(1.0, self.session.reply_timeout)))
        except BoardTimeout:
            return
        if got != b">":
            t.unread(got)

    def _paste(self, data: bytes, deadline: Deadline, *, wait: bool = True) -> bool:
        """Send code within the board's flow-control windows (it acknowledges each window
        consumed with ``\\x01``; a ``\\x04`` means it stopped reading, e.g. on a SyntaxError)."""
        s = self.session
        t = s.transport
        reply = deadline.cap(s.reply_timeout)
        (window,) = struct.unpack("<H", t.read_exact(2, deadline=reply))
        if window == 0:
            raise ProtocolError("raw-paste window of 0 bytes", where=s.where, tail=t.tail)
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
                        where=s.where,
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
                f"raw-paste end not acknowledged, got {ack[-40:]!r}", where=s.where, tail=t.tail
            )
        return False

    def _not_accepted(self, deadline: Deadline, exc: BoardTimeout) -> NoReturn:
        """No ``OK``: the board lost the ``\\x04`` (no flow control) and still waits for the end
        of the code, or it is elsewhere. Ctrl-C clears a half-received input silently (and
        interrupts code that runs, which then says so); a sync then shows which it was. Code
        that never started may be sent again (``CodeDamaged.resend_safe``)."""
        from hil.checked import CodeDamaged  # (a cycle at import time otherwise)

        s = self.session
        s.transport.write(b"\x03")
        try:
            before = s.sync(deadline.cap(s.reply_timeout))
        except BoardTimeout:
            raise RawReplError(
                "board did not accept the code (no b'OK')", where=s.where, tail=exc.tail
            ) from exc
        if before.strip(b">"):
            raise RawReplError(
                f"board did not accept the code (no b'OK'), then answered {before[-60:]!r}",
                where=s.where,
                tail=s.transport.tail,
            ) from exc
        raise CodeDamaged(
            "the end of the code was lost on the way (no b'OK'); it did not run",
            resend_safe=True,
            where=s.where,
            tail=s.transport.tail,
        ) from exc

    def plain(self, data: bytes, deadline: Deadline, *, wait: bool = True) -> None:
        """Send code the plain raw way: slices, ``\\x04``, then the board's ``OK``."""
        s = self.session
        t = s.transport
        for i in range(0, len(data), PLAIN_RAW_SLICE):
            if i:
                time.sleep(PLAIN_RAW_PAUSE)
            t.write(data[i : i + PLAIN_RAW_SLICE])
        t.write(b"\x04")
        if not wait:
            return
        try:
            head = t.read_until(b"OK", deadline=deadline.cap(s.reply_timeout))
        except BoardTimeout as exc:
            self._not_accepted(deadline, exc)
        if head[:-2].strip(b">"):  # a stray prompt is harmless, anything else is not
            raise RawReplError(
                f"board did not accept the code (answered {head[-40:]!r})",
                where=s.where,
                tail=t.tail,
            )
