"""What a board's REPL output means: uncooking its stdout, the result of one execution, and
the ``repr`` values it prints.

Kept apart from the protocol in ``hil.repl`` because these are pure functions and values: the
friendly driver, the board helpers and the probe all read board output the same way, and tests
check them without a board.
"""

from __future__ import annotations

import ast
import codecs
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.errors import RemoteError


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
    """Board stdout back to what the program printed (exact: cooking is a pure substitution)."""
    return data.replace(b"\r\n", b"\n")


#: Every escape a ``repr()`` writes; any other after a backslash is damage (and a Python
#: warning, not an error, if left to the parser).
_ESCAPES = frozenset("\\'\"abfnrtvxuUN01234567\n")
_BYTES_ESCAPES = _ESCAPES - set("uUN")
_BACKSLASH = re.compile(r"\\(.)", re.DOTALL)


def parse_value(text: str) -> Any:
    """A board's ``repr()`` to a Python value: literals only, plus ``inf``/``nan`` floats."""
    escapes = _BYTES_ESCAPES if text.lstrip().startswith(("b'", 'b"')) else _ESCAPES
    bad = next((m for m in _BACKSLASH.finditer(text) if m.group(1) not in escapes), None)
    if bad is not None:
        raise ValueError(f"not a Python literal (escape {bad.group(0)!r}): {text[:200]!r}")
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


def is_compile_error(result: ExecResult) -> bool:
    """Whether the board rejected the code itself (then resending it cannot help)."""
    error = result.error()
    return error is not None and error.type_name in ("SyntaxError", "IndentationError")


def summary(data: bytes, limit: int = 120) -> str:
    """A one-line preview of code for the transcript."""
    text = data[:limit].decode("utf-8", "replace").replace("\n", "\\n")
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


class StreamDecoder:
    """UTF-8 decode a byte stream whose chunks may split characters."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._sink = sink

    def feed(self, data: bytes) -> None:
        if text := self._decoder.decode(data):
            self._sink(text)

    def flush(self) -> None:
        if text := self._decoder.decode(b"", final=True):
            self._sink(text)


@dataclass(frozen=True)
class Exchange:
    """One finished REPL exchange, for observers (reports turn each into a step)."""

    title: str
    sent: bytes
    received: bytes
    seconds: float
    error: BaseException | None


def observed_as(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tell ``Repl.observers`` about each call of the decorated method, with its bytes."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def observed(self: Any, *args: Any, **kwargs: Any) -> Any:
            what = args[0] if args and isinstance(args[0], (str, bytes)) else b""
            return self.observed(kind, what, lambda: method(self, *args, **kwargs))

        return observed

    return wrap
