"""Every failure says what happened, where, and whose fault it is.

Three families, kept apart everywhere (reports, retries, Allure categories):

* ``ProductError``: the code under test misbehaved. ``RemoteError`` is the main one: code on the
  board raised an exception. A run never retries these.
* ``InfrastructureError``: the rig failed (link lost, board silent past its deadline, raw REPL
  unreachable, lease timeout, flashing failed). A run may retry these, move to another board,
  or quarantine the board.
* ``ConfigError``: the user's usage: a bad option, rack file, manifest or path. One line, at
  start, naming what and where; never retried, never blamed on a board.

Errors that involve a board carry ``tail``: the last bytes received from it, because "timed out"
without what the board last said is useless at 3 a.m. The message shows them as a person at the
REPL would have seen them (the raw REPL's framing left out, whole lines, the last few); the
bytes themselves stay in ``tail`` (and all of them in the transcript's ``wire``). An error
whose ``tail`` holds exactly what came since a point (``since``: "the code was sent") says so,
and says when nothing came.
"""

from __future__ import annotations

from hil import board_text

PRODUCT = "product"
INFRASTRUCTURE = "infrastructure"
USAGE = "usage"

#: How many received bytes an error keeps for its message.
TAIL_BYTES = 256


def escape_text(text: str) -> str:
    """Board text made safe to show: control characters escaped (``\\x1b``), the rest kept.

    A board's message is data; printed raw, ``\\x1b[2J`` would clear the reader's terminal.
    Newlines and tabs stay, so tracebacks keep their shape. The rule is ``hil.board_text``'s.
    """
    return board_text.escape(text)


def seconds_text(seconds: float) -> str:
    """``2 s``, ``0.25 s``, ``1.5 s``, ``120 s``: a duration as a person reads it (a deadline
    that was capped a moment later is 1.99996 s, which says nothing more than 2 s)."""
    if seconds >= 10:
        return f"{round(seconds)} s"
    return f"{float(f'{seconds:.2g}'):g} s"


def shown_tail(tail: bytes, *, whole: bool) -> str:
    """The last lines the board printed in ``tail`` (``hil.replview.board_lines``), quoted
    on one line; "" when it printed nothing but the REPL's own framing. ``whole``: ``tail``
    starts where the board's output started, not cut at an arbitrary byte."""
    from hil.replview import board_lines

    lines = board_lines(tail, whole=whole)
    return '"' + "\\n".join(lines) + '"' if lines else ""


class HilError(Exception):
    """Base of all mpy-hil errors.

    ``where`` names the board, port, file or lease the error is about; ``tail`` holds the last
    bytes seen from the board when a board is involved; ``since``, when given, says that
    ``tail`` is everything the board sent since then (an empty ``tail`` then means silence).
    """

    fault: str = INFRASTRUCTURE

    def __init__(self, what: str, *, where: str = "", tail: bytes = b"", since: str = "") -> None:
        self.what = what
        self.where = where
        self.since = since
        self._whole = len(tail) <= TAIL_BYTES
        self.tail = bytes(tail[-TAIL_BYTES:])
        super().__init__(self._render())

    def _render(self) -> str:
        text = escape_text(f"{self.what}")
        if self.where:
            text = f"{self.where}: {text}"
        text += f" [{self.fault} fault]"
        return text + self._said()

    def _said(self) -> str:
        """What the board said, for the message (see the module doc)."""
        if self.since and not self.tail:
            return f"; the board sent nothing since {self.since}"
        if not self.tail:
            return ""
        shown = shown_tail(self.tail, whole=self._whole and bool(self.since))
        if self.since:
            if not shown:
                return f"; the board printed nothing since {self.since}"
            return f"; since {self.since} the board printed: {shown}"
        if not shown:
            return "; the board's last bytes hold no output, only the REPL's framing"
        return f"; the board's last lines: {shown}"


class InfrastructureError(HilError):
    """The rig failed, not the code under test."""

    fault = INFRASTRUCTURE


class ProductError(HilError):
    """The code under test failed."""

    fault = PRODUCT


class RemoteError(ProductError):
    """Code running on the board raised an exception.

    ``type_name`` and ``message`` come from the last line of the board's traceback
    (``NameError: name 'x' isn't defined``), ``traceback`` is the whole text the board printed.
    """

    def __init__(
        self,
        type_name: str,
        message: str,
        traceback: str,
        *,
        where: str = "",
        tail: bytes = b"",
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        what = (
            f"the board raised {type_name}: {message}"
            if message
            else f"the board raised {type_name}"
        )
        super().__init__(what, where=where, tail=tail)

    @classmethod
    def from_traceback(cls, text: str, *, where: str = "", tail: bytes = b"") -> RemoteError:
        """Parse a MicroPython traceback; the exception is its last non-empty line."""
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        last = lines[-1] if lines else ""
        type_name, sep, message = last.partition(": ")
        if not sep:
            type_name, message = last.strip(), ""
        return cls(type_name.strip() or "UnknownError", message, text, where=where, tail=tail)


class LinkError(InfrastructureError):
    """The byte link to the board failed: port missing, unplugged, closed or I/O error."""


class BoardTimeout(InfrastructureError):
    """The board did not answer within its deadline."""


class RawReplError(InfrastructureError):
    """The raw REPL could not be entered, or the board broke the raw REPL protocol."""


class ProtocolError(InfrastructureError):
    """The board sent bytes that the protocol does not allow at that point."""


class LeaseTimeout(InfrastructureError):
    """No matching board became free in time."""


class BoardQuarantined(InfrastructureError):
    """The board stopped answering and recovery failed; it is out for the rest of the run."""


class FlashError(InfrastructureError):
    """Flashing, or verifying the flashed firmware, failed."""


class ConfigError(HilError):
    """The user's usage is wrong (a file, option or argument); ``where`` names what and where."""

    fault = USAGE


class SimError(InfrastructureError):
    """The virtual board's host process failed or refused a request."""
