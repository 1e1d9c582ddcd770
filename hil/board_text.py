"""Board text made safe to show, by one rule everywhere.

What a board sends is data. Printed raw, ``\\x1b[2J`` clears the reader's terminal, ``\\x9b``
(the one-character C1 form of the same CSI) does so on many terminals, a lone ``\\r`` overwrites
the line before it, U+202E reverses the text after it. Error messages, the REPL view, report
attachments and the report's environment file all show board text, each its own way (a
transcript keeps its lines, an attachment names the REPL's control bytes, a properties file
has its own quoting); which characters never reach a reader raw is decided here, once.

The rule: every character Python does not count as printable (``str.isprintable``: the C0
controls, DEL, the C1 controls U+0080-U+009F, format characters such as U+202E, line and
paragraph separators, spaces other than the plain one, unassigned code points) is shown as an
escape, except those a caller keeps (newline and tab, so that code and tracebacks keep their
shape). The escape is the one Python writes in a string literal (``\\r``, ``\\x1b``, ``\\x9b``,
``\\u202e``), or a name the caller gives (``<CTRL-C>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: What a transcript keeps as it is: code and tracebacks keep their lines and indents.
LINES = "\n\t"

#: Everything outside printable ASCII, checked one by one (ASCII text passes at C speed).
_SUSPECT = re.compile(r"[^ -~]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_shown(ch: str, keep: str = LINES) -> bool:
    """Whether the character ``ch`` may reach a reader as it is."""
    return ch in keep or ch.isprintable()


def visible(ch: str) -> str:
    """The escape of one character, as in a Python string literal: ``\\r``, ``\\x1b``,
    ``\\x9b``, ``\\u202e``, ``\\U000e0001``."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, *, keep: str = LINES, names: Mapping[str, str] | None = None) -> str:
    """``text`` with every character that may not reach a reader raw (see the module) escaped.

    ``keep``: characters shown as they are although not printable (newline and tab by
    default; ``""`` for one-line text). ``names``: the form of some characters instead of
    the default escape (``{"\\x03": "<CTRL-C>"}``); only characters that are escaped at all
    are looked up, so a name can never make a character unsafe.
    """
    if text.isprintable():  # the common case: nothing to escape, nothing to keep
        return text
    named = names or {}

    def one(match: re.Match[str]) -> str:
        ch = match.group()
        if is_shown(ch, keep):
            return ch
        return named.get(ch) or visible(ch)

    return _SUSPECT.sub(one, text)
