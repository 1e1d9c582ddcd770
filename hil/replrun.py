"""Running one piece of code: how it is sent (raw-paste or plain raw, checked or not) and how
its answer is read back as the code's own.

Why apart from ``hil.repl``: this is the decision table of issue 13's "what crosses the wire
is right, or fails as what it is", in one place:

* raw-paste (flow control): the code as it is; code holding control bytes checked
  (``hil.checked.wrap``), since the raw REPL would act on them;
* plain raw (no flow control: bytes can be lost): always checked; code longer than
  ``checked.PIECE`` goes ahead in pieces (``checked.pieces``) so that the board's input line
  stays small; the wrapper proves the code arrived whole before it runs it;
* a board without the heap for the checked form (about one more copy of the code: code longer
  than ``Repl.check_limit``, a sixth of the free heap once the board is probed, else
  ``UNKNOWN_HEAP_LIMIT``; or a ``MemoryError`` before the code's turn): the code goes
  unchecked, noted in the transcript (in the REPL view once per connection or reset), unless
  the caller insists (``checked_only``: the
  framework's own helpers and ``put`` chunks, whose ``MemoryError`` then stands, so that
  ``put`` can halve its chunks). Unchecked code on a lossy link is the one case left in which
  a lost byte can still look like the product's fault;
* a raw-paste the board aborted for another reason than the code itself: sent again plainly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from hil import checked
from hil.deadline import Deadline
from hil.errors import BoardTimeout, LinkError
from hil.rawpaste import Sent
from hil.replparse import ExecResult, is_compile_error
from hil.replread import collect
from hil.transcript import Direction, Entry

if TYPE_CHECKING:
    from hil.repl import Repl

Sink = Callable[[bytes], None]
#: The transcript's note when code goes unchecked for want of heap: the first time after a
#: connection or a reset (shown in the REPL view), and every later time (the wire only).
UNCHECKED_HEAD = "the board cannot afford checked code here"
UNCHECKED = f"{UNCHECKED_HEAD}: sent unchecked (said once)"
UNCHECKED_AGAIN = "sent unchecked"
#: Longest code sent checked on a plain raw link while the board's heap is unknown (boards
#: without raw-paste are old firmware on small chips: a micro:bit has 7 kB).
UNKNOWN_HEAP_LIMIT = 1024


def run(
    repl: Repl, data: bytes, deadline: Deadline, on_output: Sink | None, checked_only: bool | None
) -> ExecResult:
    """Send ``data`` and read its answer (see the module doc); raises ``CodeDamaged``, and
    ``BoardTimeout`` carrying exactly what the board sent since the code was sent."""
    mark = repl.transport.tap.mark()
    try:
        return _run(repl, data, deadline, on_output, checked_only)
    except BoardTimeout as exc:
        entries = repl.transport.tap.entries(mark)
        sent = b"".join(e.data for e in entries if e.direction is Direction.TX)
        # every form of sending code ends with Ctrl-D; short of it, the board never ran it
        kind = BoardTimeout if sent.endswith(b"\x04") else CodeNotTaken
        raise kind(
            exc.what,
            where=exc.where,
            tail=_since_sent(entries),
            since="the code was sent" if kind is BoardTimeout else "the code was offered",
        ) from exc


class CodeNotTaken(BoardTimeout):
    """The board stopped taking the code before its end was sent (a stalled or hung link, a
    raw-paste window never granted): none of it ran."""


def _since_sent(entries: list[Entry]) -> bytes:
    """The bytes the board sent after the host last wrote (the code, or its last piece)."""
    received: list[bytes] = []
    for entry in reversed(entries):
        if entry.direction is Direction.TX:
            break
        if entry.direction is Direction.RX:
            received.append(entry.data)
    return b"".join(reversed(received))


def _run(
    repl: Repl, data: bytes, deadline: Deadline, on_output: Sink | None, checked_only: bool | None
) -> ExecResult:
    control = checked.has_control(data)
    try:
        return _run_checked(repl, data, deadline, on_output, checked_only)
    except checked.NoRoom as exc:
        if exc.result is not None and (checked_only or control):
            return exc.result
        if exc.stored:
            repl.sender.plain(b"globals().pop('_hilb',0)", deadline)  # what pieces left
            collect(repl, deadline, None)
    if repl.said_unchecked:  # on a small board that is every exec: the REPL view says it once
        repl.note(UNCHECKED_AGAIN)
    else:
        repl.note(UNCHECKED)
        # a framework action's exchanges fold into one line of the REPL view: said again after
        repl.said_unchecked = repl.transport.tap.in_action is None
    repl.sender.plain(data, deadline)
    result = collect(repl, deadline, on_output)
    _suspect(repl, data, result, deadline)
    return result


def _suspect(repl: Repl, data: bytes, result: ExecResult, deadline: Deadline) -> None:
    """Unchecked code that failed in a way a lost or altered byte explains: raise ``LinkError``.

    A ``SyntaxError`` in the code as sent is checked again on the board: the same code, checked,
    compiled but not run (``if 0:`` before it). A ``NameError``, ``ImportError`` or
    ``AttributeError`` about a name that the code sent does not contain came from damage.
    """
    error = result.error(where=repl.where)
    if error is None or not _innermost_is_stdin(error.traceback):
        return
    # the name looked up is the last one quoted ("'NoneType' object has no attribute 'foo'")
    names = _QUOTED.findall(error.message)
    lookup = error.type_name in ("NameError", "ImportError", "AttributeError")
    if lookup and names and names[-1].encode() not in data:
        raise LinkError(
            f"the code was damaged on the way ({error.type_name}: {error.message}, a name "
            "it does not contain)",
            where=repl.where,
            tail=repl.transport.tail,
        )
    if error.type_name in ("SyntaxError", "IndentationError"):
        probe = b"if 0:\n" + b"".join(b" " + line for line in data.splitlines(keepends=True))
        try:
            again = _run_checked(repl, probe, deadline, None, True)
        except (checked.NoRoom, checked.CodeDamaged):
            return  # cannot tell: the board's own report stands
        if again.error() is None:  # a SyntaxError: not a line of it ran, so it may go again
            raise checked.CodeDamaged(
                f"the code was damaged on the way ({error.type_name} where the board compiles "
                "it when checked); it did not run",
                resend_safe=True,
                where=repl.where,
                tail=repl.transport.tail,
            )


_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")


def _innermost_is_stdin(traceback: str) -> bool:
    frames = [line for line in traceback.splitlines() if line.strip().startswith("File ")]
    return bool(frames) and '"<stdin>"' in frames[-1]


def own_form(repl: Repl) -> Callable[[bytes], bytes]:
    """The checked form of short code, as this board's lexer takes it."""
    return lambda code: checked.wrap(code, eight_bit=repl.eight_bit_literals)


def _run_checked(
    repl: Repl,
    data: bytes,
    deadline: Deadline,
    on_output: Sink | None,
    checked_only: bool | None,
) -> ExecResult:
    sent = repl.sender.send(
        data,
        deadline,
        plain_form=lambda code: _plain_form(repl, code, deadline, checked_only),
        paste_form=own_form(repl) if checked.has_control(data) else None,
    )
    marked = checked.MarkFilter(on_output) if on_output is not None else None
    sink = marked.feed if marked is not None else None
    result = collect(repl, deadline, sink if sent.wrapped else on_output)
    if sent.aborted and not is_compile_error(result):
        # The board stopped reading mid-paste for a reason other than the code itself: the
        # code never ran, so sending it again the plain way is safe.
        repl.note("raw-paste aborted by the board: plain raw REPL for this connection")
        repl.sender.raw_paste = False
        repl.forget_mode()
        repl.sender.plain(_plain_form(repl, data, deadline, checked_only), deadline)
        sent = Sent(False, True)
        result = collect(repl, deadline, sink)
    if not sent.wrapped:
        return result
    if marked is not None:
        result = ExecResult(marked.head, result.stderr, result.soft_reset)
    return checked.unwrap(result, where=repl.where, tail=repl.transport.tail)


def _plain_form(repl: Repl, data: bytes, deadline: Deadline, checked_only: bool | None) -> bytes:
    """Checked code for a plain raw link; long code goes ahead in pieces. Code the board cannot
    afford to check (too long for its heap, or a user's code on a board too small for the one
    more level of C stack that ``exec`` takes) raises ``NoRoom`` before anything is sent."""
    limit = repl.check_limit if repl.check_limit is not None else UNKNOWN_HEAP_LIMIT
    afford = len(data) <= limit and (repl.check_user_code or checked_only is None)
    if not afford and not checked_only and not checked.has_control(data):
        raise checked.NoRoom(None)
    if checked.literal_size(data, repl.eight_bit_literals) <= checked.PIECE:
        return own_form(repl)(data)
    for piece in checked.pieces(data, eight_bit=repl.eight_bit_literals):
        repl.sender.plain(piece, deadline)
        result = collect(repl, deadline, None)
        repl.forget_mode()  # the code is still on its way
        if result.stdout or result.stderr or result.soft_reset:
            error = result.error(where=repl.where)
            if error is not None and error.type_name == "MemoryError":
                raise checked.NoRoom(result, stored=True)  # no room for the code: nothing ran
            raise checked.CodeDamaged(
                f"code damaged on the way to the board (a piece answered {result!r:.120})",
                resend_safe=True,
                where=repl.where,
                tail=repl.transport.tail,
            )
    return checked.wrap(data, stored=True)
