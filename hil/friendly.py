"""The friendly REPL as a person sees it: auto-indent, the screen, and doctest-style transcripts.

Kept apart from the byte protocol in ``hil.repl``: these are pure functions (how the board's
readline indents, which keys produce a given line, how backspaces render) plus the transcript
player, so they are unit-testable without a board.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hil.errors import RemoteError

if TYPE_CHECKING:
    from hil.repl import Repl

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
    repl: Repl,
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
    examples = doctest.DocTestParser().get_examples(transcript)
    result = PlayResult()
    checker = doctest.OutputChecker()
    for example in examples:
        result.examples += 1
        shown = repl.friendly(example.source, timeout=timeout)
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
