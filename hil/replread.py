"""Reading one execution's answer from the raw REPL, whatever bytes the program printed.

Why its own module: the raw REPL frames an answer as ``stdout \\x04 stderr \\x04 >``, and a
program may print ``\\x04`` itself (``print('a\\x04b')``, a binary dump). Then the frame's end is
not where it seems, and no reading of the stream alone can tell (the program might print
``\\x04\\x04>`` and go on). So:

* the usual answer, ``\\x04`` + stderr + ``\\x04>`` where the first ``\\x04`` ends stdout, is taken
  as it is (as every tool does);
* as soon as the bytes show that the output held a ``\\x04`` (the second ``\\x04`` is not followed
  by ``>``, nor by a soft reboot), the end is *confirmed*: a tiny program printing a random token
  is sent, which the board runs only once it is back at its prompt. Everything before the
  token's answer is this execution's answer; it ends in ``\\x04 stderr \\x04>``, and stderr is
  the part after the last ``\\x04`` (or after the ``\\x04`` that starts a traceback). No deadline
  is waited out, and the next command finds the board at its prompt.

* the same when the bytes look like a frame end but what stands as the error report is none
  (``\\x04 text \\x04>`` printed by the program: no board reports an error like ``text``).

What this cannot see without a round trip on every execution: a program that prints exactly
``\\x04\\x04>`` (or ``\\x04`` and a whole traceback, then ``\\x04>``) and goes on. Its
answer is cut there; the rest reaches the next command, which finds the board not at its
prompt and re-synchronises (``Repl.enter_raw``) before sending anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hil.deadline import Deadline
from hil.errors import LinkError, ProtocolError
from hil.rawpaste import RAW_PROMPT
from hil.replparse import ExecResult, Uncooker, uncook

if TYPE_CHECKING:
    from hil.repl import Repl

#: What every soft reboot prints (``MPY: `` before it on current firmware).
SOFT_REBOOT = b"soft reboot\r\n"
TRACEBACK = b"Traceback (most recent call last):"


def collect(
    repl: Repl, deadline: Deadline, on_output: Callable[[bytes], None] | None
) -> ExecResult:
    """Read stdout, stderr and the prompt (or the soft reboot of an uncaught SystemExit)."""
    t = repl.transport
    cooker = Uncooker()
    if on_output is None:
        first = t.read_until(b"\x04", deadline=deadline)[:-1]
    else:
        t.read_until(b"\x04", deadline=deadline, on_data=lambda c: on_output(cooker.feed(c)))
        first = b""
    err = t.read_until(b"\x04", deadline=deadline)[:-1]
    after = t.read_exact(1, deadline=deadline.cap(repl.reply_timeout))
    if after == b">" and _is_error_report(uncook(err)):
        _flush(cooker, on_output)
        repl.at_prompt()
        return ExecResult(uncook(first), uncook(err))
    if after != b">":
        t.unread(after)
        after = b""
    if not err:
        got = t.read_until((b"\x04", SOFT_REBOOT), deadline=deadline)
        t.unread(got)
        if got.endswith(SOFT_REBOOT) and got[: -len(SOFT_REBOOT)] in (b"", b"MPY: "):
            _flush(cooker, on_output)
            repl.note("uncaught SystemExit: the board soft-resets")
            repl.await_reboot(deadline.cap(max(repl.enter_timeout, deadline.remaining)))
            return ExecResult(uncook(first), b"", soft_reset=True)
    # the output held \x04 (and, when ``after`` is ">", mimicked a frame end whose "error
    # report" no board would print: ``\x04 text \x04>``)
    repl.note("the output held \\x04: confirm where the answer ends")
    whole = first + b"\x04" + err + b"\x04" + after + repl.sync(deadline)
    stdout, stderr, reset = split_answer(whole, where=repl.where, tail=t.tail)
    if on_output is not None:
        if stdout:
            on_output(cooker.feed(stdout))
        _flush(cooker, on_output)
        stdout = b""
    return ExecResult(uncook(stdout), _error_report(uncook(stderr), repl), reset)


def _is_error_report(stderr: bytes) -> bool:
    """Whether ``stderr`` reads like the board's error report, which MicroPython always starts
    with the traceback header (only an exception without a traceback, a ``MemoryError`` on an
    exhausted heap, lacks it), or is empty."""
    return not stderr or stderr.startswith(TRACEBACK) or stderr.startswith(b"MemoryError")


def _error_report(stderr: bytes, repl: Repl) -> bytes:
    """The board's error report; anything else there means the answer was damaged or
    misframed on the link: a byte of the program's output taken for an error would blame the
    product for the wire."""
    if _is_error_report(stderr):
        return stderr
    raise LinkError(
        f"answer damaged: its error report is not a traceback: {stderr[:60]!r}",
        where=repl.where,
        tail=repl.transport.tail,
    )


def _flush(cooker: Uncooker, on_output: Callable[[bytes], None] | None) -> None:
    if on_output is not None and (tail := cooker.flush()):
        on_output(tail)


def split_answer(whole: bytes, *, where: str = "", tail: bytes = b"") -> tuple[bytes, bytes, bool]:
    """A confirmed answer (everything up to the prompt) to stdout, stderr and whether it ended
    in a soft reboot. Extra ``\\x04`` bytes belong to stdout, unless one starts a traceback."""
    if whole.endswith(b"\x04>"):
        body = whole[:-2]
        cut = body.rfind(b"\x04" + TRACEBACK)
        if cut < 0:
            cut = body.rfind(b"\x04")
        if cut >= 0:
            return body[:cut], body[cut + 1 :], False
    reboot = whole.rfind(SOFT_REBOOT)
    if whole.endswith(RAW_PROMPT) and reboot >= 0:
        cut = whole.rfind(b"\x04\x04", 0, reboot)
        if cut >= 0:
            return whole[:cut], b"", True
    raise ProtocolError(f"answer without a frame end: {whole[-60:]!r}", where=where, tail=tail)
