"""The friendly REPL as a person sees it: typing lines, auto-indent, the screen, and
doctest-style transcripts.

Built on top of ``hil.repl`` (its public interface: the transport, the mode, entering the
friendly REPL, reporting exchanges), which knows nothing of this module. The pure parts (how the
board's readline indents, which keys produce a given line, how backspaces render) are
unit-testable without a board.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass, field

from hil.deadline import Deadline, as_deadline
from hil.errors import BoardTimeout, ProtocolError, RemoteError
from hil.repl import PS1, PS2, Mode, Repl
from hil.replparse import summary

TRACEBACK_HEADER = "Traceback (most recent call last):"


def auto_indent(text: str) -> str:
    """The spaces a board's readline inserts after ``... `` for the input typed so far.

    ``text`` is what the REPL has accumulated, ending in ``\\n`` (shared/readline/readline.c):
    the previous line's indentation, one level more after a ``:``, none when the previous two
    lines were all spaces.
    """
    if len(text) < 2 or not text.endswith("\n"):
        return ""
    start = text.rfind("\n", 0, len(text) - 1) + 1
    first = start
    while first < len(text) and text[first] == " ":
        first += 1
    if start > 0 and first + 1 == len(text):
        prev_end = start - 1
        prev_start = text.rfind("\n", 0, prev_end) + 1
        if not text[prev_start:prev_end].strip(" "):
            return ""
    levels = (first - start) // 4
    if text[-2] == ":":
        levels += 1
    return "    " * levels


def keys_for_line(line: str, auto: int) -> str:
    """The keys that turn ``auto`` auto-inserted spaces into ``line``.

    More indentation than inserted: type the rest. Less: backspace, where one backspace removes
    4 spaces while only spaces (4 or more) precede the cursor, else 1 (readline's dedent).
    """
    indent = len(line) - len(line.lstrip(" "))
    if indent >= auto:
        return line[auto:]
    keys = []
    cursor = auto
    while cursor > indent:
        cursor -= 4 if cursor >= 4 else 1
        keys.append("\x08")
    return "".join(keys) + " " * (indent - cursor) + line.lstrip(" ")


_ESCAPE = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def render_screen(data: bytes) -> str:
    """Bytes sent to a terminal, as the text a person reads: CR LF as newlines, backspaces and
    the erase-to-end-of-line / cursor-left escapes applied, other escapes dropped."""
    lines: list[str] = []
    line: list[str] = []
    cursor = 0
    text = data.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\x1b":
            m = _ESCAPE.match(text, i)
            if m:
                n = int(m.group(1) or 1)
                if m.group(2) == "K":
                    del line[cursor:]
                elif m.group(2) == "D":
                    cursor = max(cursor - n, 0)
                elif m.group(2) == "C":
                    cursor = min(cursor + n, len(line))
                i = m.end()
                continue
            i += 1
            continue
        if c == "\n":
            lines.append("".join(line))
            line, cursor = [], 0
        elif c == "\r":
            cursor = 0
        elif c == "\x08":
            cursor = max(cursor - 1, 0)
        elif c >= " " or c == "\t":
            if cursor < len(line):
                line[cursor] = c
            else:
                line.append(c)
            cursor += 1
        i += 1
    lines.append("".join(line))
    return "\n".join(lines)


@dataclass(frozen=True)
class FriendlyResult:
    """What the friendly REPL showed: the whole ``screen`` (prompts, echo, output) and the
    ``output`` of the last statement."""

    screen: str
    output: str

    @property
    def error(self) -> RemoteError | None:
        """The exception the statement raised (parsed from its traceback), or None."""
        at = self.output.rfind(TRACEBACK_HEADER)
        if at < 0:
            return None
        return RemoteError.from_traceback(self.output[at:])


# -- the driver --------------------------------------------------------------------------------

_BLOCK_CONTINUATIONS = ("else", "elif", "except", "finally", "case")


class FriendlyRepl:
    """Types into a board's friendly REPL as a person would, on top of its ``Repl``.

    ``auto_indent`` turns False (for this connection) when the board turns out not to
    auto-indent after ``... ``.
    """

    def __init__(self, repl: Repl) -> None:
        self.repl = repl
        self.auto_indent = True

    def type(self, source: str, *, timeout: Deadline | float = 10.0) -> FriendlyResult:
        """Type source into the friendly REPL; return what the screen shows.

        Lines are typed one at a time after their prompt. The board auto-indents after a line
        ending in ``:`` (and keeps the indentation of the line before), so the host types only
        the indentation still missing, or backspaces (each removes up to 4 auto-inserted
        spaces). A compound statement is finished with empty lines, as at a keyboard.
        """
        return self.repl.observed("friendly", source, lambda: self._type(source, timeout))

    def _type(self, source: str, timeout: Deadline | float) -> FriendlyResult:
        repl = self.repl
        deadline = as_deadline(timeout)
        if repl.mode is not Mode.FRIENDLY:
            repl.enter_friendly()
        repl.note(f"friendly {summary(source.encode())}")
        repl.mode = Mode.UNKNOWN
        t = repl.transport
        lines = source.rstrip("\n").split("\n") if source.strip() else [""]
        typed = ""  # what the board has accumulated so far ("" at the primary prompt)
        screen = bytearray(PS1)
        pending = list(lines)
        closers = 0
        while True:
            line = pending.pop(0) if pending else ""
            if not pending and line == "" and typed and closers > 3:
                raise ProtocolError(
                    "friendly REPL keeps asking for more input", where=repl.where, tail=t.tail
                )
            indent = auto_indent(typed) if (typed and self.auto_indent) else ""
            if indent:
                indent = self._read_auto_indent(indent, deadline)
                screen += indent.encode()
            keys = keys_for_line(line, len(indent))
            t.write(keys.encode() + b"\r")
            screen += t.read_until(b"\r\n", deadline=deadline)  # the echo of Enter
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
            repl.mode = Mode.FRIENDLY
            return FriendlyResult(
                screen=render_screen(bytes(screen[: -len(PS1)])),
                output=render_screen(output),
            )

    def _read_auto_indent(self, expected: str, deadline: Deadline) -> str:
        """Consume the spaces the board inserted after ``... `` (the rule is predictable, so
        no waiting for silence: only a board without auto-indent costs a short wait, once)."""
        t = self.repl.transport
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
        t = self.repl.transport
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


# -- the doctest-style transcript player -----------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """The first example whose output differed: where it is and both texts."""

    lineno: int  # 1-based line of the ``>>>`` in the transcript
    source: str
    want: str
    got: str

    def __str__(self) -> str:
        source = "".join(
            ("... " if i else ">>> ") + line + "\n"
            for i, line in enumerate(self.source.rstrip("\n").split("\n"))
        )
        return (
            f"transcript line {self.lineno}: output differs\n{source}"
            f"expected:\n{_indent(self.want)}got:\n{_indent(self.got)}"
        )


@dataclass
class PlayResult:
    """Outcome of playing a transcript; false when an example's output differed."""

    examples: int = 0
    passed: int = 0
    failure: Mismatch | None = None
    screen: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.failure is None

    def check(self) -> None:
        """Raise ``AssertionError`` with both texts when an example failed (for tests)."""
        if self.failure is not None:
            raise AssertionError(str(self.failure))


def play(
    repl: Repl | FriendlyRepl,
    transcript: str,
    *,
    timeout: float = 10.0,
    optionflags: int = doctest.ELLIPSIS,
) -> PlayResult:
    """Play a doctest-style transcript on the board through the friendly REPL.

    Each ``>>>`` example (with its ``...`` lines) is typed as a person would; its output is
    compared with the expected text by doctest's own checker (``...`` matches anything with
    the default ``ELLIPSIS``). An expected traceback matches on its header and its last line,
    as in doctest. Stops at the first mismatch.
    """
    friendly = repl if isinstance(repl, FriendlyRepl) else FriendlyRepl(repl)
    examples = doctest.DocTestParser().get_examples(transcript)
    result = PlayResult()
    checker = doctest.OutputChecker()
    for example in examples:
        result.examples += 1
        shown = friendly.type(example.source, timeout=timeout)
        result.screen.append(shown.screen)
        got = shown.output
        if got and not got.endswith("\n"):
            got += "\n"
        if example.exc_msg is not None:
            ok = _check_exception(checker, example, got, optionflags)
        else:
            ok = checker.check_output(example.want, got, optionflags)
        if not ok:
            result.failure = Mismatch(example.lineno + 1, example.source, example.want, got)
            return result
        result.passed += 1
    return result


def _check_exception(
    checker: doctest.OutputChecker, example: doctest.Example, got: str, flags: int
) -> bool:
    at = got.rfind(TRACEBACK_HEADER)
    if at < 0:
        return False
    lines = [line for line in got[at:].split("\n") if line.strip()]
    exc_line = lines[-1] + "\n" if lines else ""
    return checker.check_output(example.exc_msg or "", exc_line, flags)


def _indent(text: str) -> str:
    return "".join(
        "    " + line + "\n" for line in (text.rstrip("\n").split("\n") if text else ["<nothing>"])
    )
