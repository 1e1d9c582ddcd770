"""Code that reaches the board verified, and answers that come back verified.

Why: a link without flow control (plain raw REPL over a UART, the micro:bit's MicroPython 1.9)
loses or alters a byte of the code now and then, and the damaged code runs: a ``SyntaxError`` or
``NameError: name 'OSrror'`` that is the wire's fault would be blamed on the product. And a byte
altered on the way back turns into a silently wrong value. Both ends therefore check a length
and an Adler-32 that the other end computed.

**Code** (``wrap``/``unwrap``; ``hil.replrun`` decides when): the code travels as a bytes
literal inside a small wrapper (or ahead of it in ``pieces``, for long code) that checks the
literal's length and Adler-32 on the board, deletes its own name, prints the mark ``\\x06`` and
only then ``exec``\\ s the code in ``__main__``. On the host:

* the mark came first: the code arrived whole and ran; the mark is removed, and a traceback
  reads as if the code had been sent directly (the wrapper's ``<stdin>`` frames dropped, the
  code's ``<string>`` named ``<stdin>``, so line numbers are the user's own). A traceback with
  only the wrapper's frames after the mark is its ``exec`` line damaged: nothing ran;
* no mark, nothing printed, and a traceback whose every frame is the wrapper's own: the code was
  damaged and *provably did not run* (``CodeDamaged.resend_safe``); a ``MemoryError`` there is
  ``NoRoom`` (no heap for the checked form), a ``KeyboardInterrupt`` what it says;
* anything else (no mark but output, an answer that fits neither): the transfer or the answer
  was damaged and the code may have run: a ``CodeDamaged`` that must not be resent.

The wrapper is one compound statement, so a transfer cut short (a byte turned into ``\\x04``)
leaves a fragment that cannot call it, and a remnant that cannot run on its own.

**Answers** (``answer_function``/``read_answer``): board helpers hand their value to ``_o``,
which prints it (bytes compactly: raw with two escapes where the board has
``sys.stdout.buffer``, else base64 where it has ``binascii``, else ``repr``) and then a trailer
``#hil <length> <checksum>`` computed on the board (64 bits of sha256 with ``hashlib``, else
Adler-32), so that an answer altered on the way is a ``LinkError``, never a value.

MicroPython interns short string and bytes literals for good (a few bytes of heap each, never
freed): nothing here sends a short literal that differs from call to call.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import zlib
from collections.abc import Callable
from typing import Any

from hil.encoding import bytes_literal, decode_repr_lines
from hil.errors import LinkError, RemoteError
from hil.replparse import ExecResult, parse_value

#: Printed by the wrapper after the check passed, right before the code runs.
MARK = b"\x06"
#: Bytes that a raw REPL acts on when they occur in code (reset, friendly, interrupt, end).
CONTROL = re.compile(b"[\x01-\x04]")
_LITERAL = re.compile(b"[^\x20-\x7e]|[\\\\']")
_SHORT = {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x5C: b"\\\\", 0x27: b"\\'"}

#: The wrapper, as short as it can be: on a plain raw link every byte costs time (slices with
#: pauses, so that a UART's buffer keeps up). The check runs in a function that has returned
#: before the code runs, so the code runs one C call (``exec``) deeper than sent directly, not
#: two: a micro:bit has 1.8 kB of stack. ``{pop}`` also drops ``_hilb`` when the code was
#: stored by ``pieces``; ``{sum}`` keeps the running sum small where the code is long.
WRAPPER = (
    "if 1:\n"
    " def _hil(s,n,a,b):\n"
    "  globals().pop('_hil'){pop};x=1;y=0\n"
    "  for c in s:x+=c;y={sum}\n"
    "  if len(s)!=n or x%65521!=a or y%65521!=b:raise OSError\n"
    "  print(end='\\x06');return s\n"
    " exec(_hil({source},{n},{a},{b}))\n"
)
#: Bytes of code below which the board's running sums stay small integers (under 2**30)
#: without a modulo per byte.
SMALL_SUMS = 2800
#: Code longer than this travels in pieces (``pieces``): the raw REPL keeps its input line in
#: memory while the code runs, and a checked code's literal is held once more; in pieces the
#: line stays small and the code is held once (a micro:bit has 7 kB of heap).
PIECE = 384
#: The wrapper's lines (its frames in a traceback are ``<stdin>`` lines 1 to 7).
WRAPPER_LINES = 7
_FRAME = re.compile(r'\s*File "([^"]*)", line (\d+)')
#: A frame of the wrapper itself: ``<stdin>`` at module level or in ``_hil`` (a compile error of
#: a damaged wrapper has no ``, in``). A ``<stdin>`` frame in another function is the user's, from
#: code sent unchecked before, and stays.
_STDIN_FRAME = re.compile(rb'\s*File "<stdin>", line \d+(, in (<module>|_hil))?\r?$')
_WRAPPED = re.compile(
    rb"\Aif 1:\n def _hil\(s,n,a,b\):\n.*?\n exec\(_hil\((b'.*'),\d+,\d+,\d+\)\)\n?\Z",
    re.DOTALL,
)


class CodeDamaged(LinkError):
    """Code or its answer was damaged on the link. ``resend_safe``: the board proved that the
    code did not run, so sending it again cannot run it twice."""

    def __init__(self, what: str, *, resend_safe: bool, where: str = "", tail: bytes = b""):
        self.resend_safe = resend_safe
        super().__init__(what, where=where, tail=tail)


class NoRoom(Exception):
    """The board has no heap for the checked form of the code: nothing ran. ``result`` is the
    board's answer (a ``MemoryError`` before the code's own turn; None when the code was
    known to be too long before sending), ``stored`` whether pieces were left in ``_hilb``."""

    def __init__(self, result: ExecResult | None, *, stored: bool = False) -> None:
        self.result = result
        self.stored = stored
        super().__init__("no heap for the checked form of the code")


def adler(data: bytes) -> tuple[int, int, int]:
    """(length, low, high) of Adler-32: what the wrapper and ``_o`` compute on the board."""
    value = zlib.adler32(data)
    return len(data), value & 0xFFFF, value >> 16


def code_literal(data: bytes) -> bytes:
    """``data`` as a bytes literal of printable ASCII (short escapes for common bytes)."""

    def escape(m: re.Match[bytes]) -> bytes:
        byte = m.group()[0]
        return _SHORT.get(byte, b"\\x%02x" % byte)

    return b"b'" + _LITERAL.sub(escape, data) + b"'"


def has_control(data: bytes) -> bool:
    """Whether code holds bytes the raw REPL would act on (then it must travel wrapped)."""
    return CONTROL.search(data) is not None


def wrap(code: bytes, *, eight_bit: bool = False, stored: bool = False) -> bytes:
    """The wrapper that checks ``code`` on the board and runs it (see the module doc).
    ``eight_bit``: the board's lexer keeps bytes >= 0x80 in a bytes literal (``Board`` proves it
    once), so they travel as they are instead of as ``\\xNN``. ``stored``: the code is not in
    the wrapper but was sent before by ``pieces`` (into ``_hilb``)."""
    n, a, b = adler(code)
    text = WRAPPER.replace("{pop}", ";globals().pop('_hilb')" if stored else "")
    text = text.replace("{sum}", "y+x" if n < SMALL_SUMS else "(y+x)%65521")
    head, tail = text.encode().split(b"{source}")
    return (
        head
        + (b"_hilb" if stored else _literal(code, eight_bit))
        + tail.replace(b"{n},{a},{b}", b"%d,%d,%d" % (n, a, b))
    )


def literal_size(code: bytes, eight_bit: bool = False) -> int:
    """Length of ``code``'s literal in the checked form (what the board's input line holds)."""
    return len(_literal(code, eight_bit))


def pieces(code: bytes, *, eight_bit: bool = False, size: int = PIECE) -> list[bytes]:
    """Small execs that store ``code`` in ``_hilb`` (a list of pieces) for
    ``wrap(stored=True)``, each literal about ``size`` bytes; each exec must answer with
    nothing at all (else the transfer was damaged: nothing ran)."""
    count = -(-literal_size(code, eight_bit) // size)
    step = -(-len(code) // count)  # even pieces: no short last one (short literals are
    # interned by MicroPython for good: each unique one would leak a little heap)
    parts = [_literal(code[i : i + step], eight_bit) for i in range(0, len(code), step)]
    out = [b"_hilb=[" + parts[0] + b"]"] + [b"_hilb.append(" + p + b")" for p in parts[1:]]
    # joined by the last piece, so that the pieces are free again before the code compiles
    out[-1] += b"\n_hilb=b''.join(_hilb)"
    return out


def _literal(code: bytes, eight_bit: bool) -> bytes:
    return bytes_literal(code) if eight_bit else code_literal(code)


def unwrap(result: ExecResult, *, where: str = "", tail: bytes = b"") -> ExecResult:
    """What wrapped code printed, as if it had been sent directly; raises ``CodeDamaged``."""
    if result.stdout.startswith(MARK):
        stderr = result.stderr.decode("utf-8", "replace")
        if stderr and "<string>" not in stderr and _FRAME.search(stderr):
            # the check passed but the wrapper's own ``exec`` line failed (damaged after the
            # check: ``xec(s)``): the code did not run
            error = RemoteError.from_traceback(stderr)
            if error.type_name not in ("MemoryError", "KeyboardInterrupt"):
                msg = f"code damaged on the way to the board ({error.type_name} in the wrapper)"
                return _raise(msg, result.stdout == MARK, where, tail)
        return ExecResult(
            result.stdout[len(MARK) :], _user_traceback(result.stderr), result.soft_reset
        )
    text = result.stderr.decode("utf-8", "replace")
    frames = [m for m in (_FRAME.match(line) for line in text.splitlines()) if m]
    # no frame at all proves nothing, except a board out of heap before it ran a line
    out_of_heap = text.rstrip().splitlines()[-1:] == ["MemoryError"] or "\nMemoryError" in text
    own = (bool(frames) or out_of_heap) and all(
        f.group(1) == "<stdin>" and 1 <= int(f.group(2)) <= WRAPPER_LINES for f in frames
    )
    if not result.stdout and own and text.rstrip().splitlines()[-1:] and not result.soft_reset:
        error = RemoteError.from_traceback(text, where=where, tail=tail)
        if error.type_name == "MemoryError":
            raise NoRoom(ExecResult(b"", result.stderr))
        if error.type_name == "KeyboardInterrupt":
            return ExecResult(b"", result.stderr)  # the code did not run: interrupted
        return _raise(
            f"code damaged on the way to the board ({error.type_name})", True, where, tail
        )
    return _raise(
        "answer to the code damaged or incomplete (the code may have run)", False, where, tail
    )


def _raise(what: str, safe: bool, where: str, tail: bytes) -> ExecResult:
    raise CodeDamaged(what, resend_safe=safe, where=where, tail=tail)


def _user_traceback(stderr: bytes) -> bytes:
    """The board's traceback without the wrapper's frames (the code runs as ``<string>``, so
    ``<stdin>`` at module level is the wrapper), the code's own then named ``<stdin>``."""
    if not stderr:
        return stderr
    lines = [line for line in stderr.split(b"\n") if not _STDIN_FRAME.match(line)]
    return b"\n".join(lines).replace(b'File "<string>"', b'File "<stdin>"')


#: A ``<stdin>`` frame of a traceback: its head, its line number, and the rest (``, in f``;
#: nothing for a compile error).
_STDIN_LINE = re.compile(r'(\s*File "<stdin>", line )(\d+)(.*)')


#: The functions of ``Board.eval``'s helper code (``hil.board``, ``answer_function``).
HELPER_FUNCTIONS = frozenset({"_hil", "_o"})


def expression_traceback(traceback: str, first: int, last: int) -> str:
    """A traceback of code whose lines ``first`` to ``last`` are the user's (an expression
    inside our helper code, ``Board.eval``) as a REPL shows it when only those lines are typed
    at ``>>>``: their ``<stdin>`` frames numbered from 1, the helper's own ``<stdin>`` frames
    dropped. A compile error's frame (no ``, in``) stays, moved into the user's lines: the
    parser may only notice the end of an incomplete expression on the helper's next line.

    Only the expression's own frames are renumbered: ``<module>`` and the anonymous ones an
    expression can hold (``<lambda>``, comprehensions). A function named ``f`` cannot be defined
    in an expression: its ``<stdin>`` frame comes from code run earlier and keeps its line."""
    out = []
    for line in traceback.split("\n"):
        match = _STDIN_LINE.fullmatch(line.rstrip("\r"))
        if match is None:
            out.append(line)
            continue
        number = int(match.group(2))
        where = match.group(3)
        function = where.removeprefix(", in ").strip()
        if function in HELPER_FUNCTIONS:
            continue  # the helper's own (``_o`` printing the value)
        compile_error = not where
        if function and not function.startswith("<"):
            out.append(line)  # a function of the user's, from code run before
            continue
        if not first <= number <= last and not compile_error:
            continue  # the helper's module-level lines (its ``finally``)
        number = min(max(number, first), last) - first + 1
        cr = "\r" if line.endswith("\r") else ""
        out.append(f"{match.group(1)}{number}{match.group(3)}{cr}")
    return "\n".join(out)


def inner_code(code: bytes) -> bytes | None:
    """The code inside a wrapper made by ``wrap`` (for views of a transcript), None when
    ``code`` is no such wrapper or its code was sent ahead in pieces."""
    match = _WRAPPED.match(code)
    if not match:
        return None
    try:
        inner = ast.literal_eval(match.group(1).decode("latin-1"))
    except (ValueError, SyntaxError):
        return None
    return inner if isinstance(inner, bytes) else None


class MarkFilter:
    """Streams the output of checked code, without the wrapper's mark; ``head`` tells whether
    the mark came first (the mark) or what came instead."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.head = b""
        self._seen: bool | None = None

    def feed(self, data: bytes) -> None:
        if self._seen is None and data:
            self._seen = data.startswith(MARK)
            self.head = data[:1] if self._seen else data[:64]
            data = data[len(MARK) :] if self._seen else b""
        if self._seen and data:
            self.sink(data)


# -- answers ---------------------------------------------------------------------------------

#: How bytes values travel back, by what the board has (see ``answer_style``).
RAW, BASE64, REPR = "raw", "base64", "repr"
_ESC = 0x10


def answer_style(features: frozenset[str] | set[str]) -> str:
    """The most compact encoding of bytes the board can print."""
    if "stdout.buffer" in features:
        return RAW
    if "binascii" in features:
        return BASE64
    return REPR


def answer_function(style: str, sha: bool) -> str:
    """Board source of ``_o(v)``: print ``v`` (bytes compactly, by ``style``) and the trailer;
    ``sha`` where the board has ``hashlib``. Short: it travels with every answer."""
    lines = ["def _o(v):"]
    if style == RAW:
        lines += [
            "    import sys",
            "    if isinstance(v,(bytes,bytearray)):",
            "        w=sys.stdout.buffer.write;w(b'B'if isinstance(v,bytearray)else b'b')",
            r"        v=bytes(v);w(v.replace(b'\x10',b'\x10\x10').replace(b'\x04',b'\x10\x14'))",
            "    else:v=repr(v);print('r'+v,end='');v=bytes(v,'utf8')",
        ]
    elif style == BASE64:
        lines += [
            "    if isinstance(v,(bytes,bytearray)):",
            "        from binascii import b2a_base64 as a",
            "        t='A'if isinstance(v,bytearray)else'a';v=bytes(v)",
            "        print(t+str(a(v),'ascii').strip(),end='')",
            "    else:v=repr(v);print('r'+v,end='');v=bytes(v,'utf8')",
        ]
    else:
        lines += ["    v=repr(v);print('r'+v,end='');v=bytes(v,'utf8')"]
    return "\n".join(lines + check_lines(sha, "    ")) + "\n"


#: Board expression of the first 8 bytes of a sha256 digest ``d`` in hex: 64 bits are plenty to
#: tell a damaged answer, and the trailer stays short.
SHA_HEX = "('%02x'*8)%tuple({d}[:8])"


def check_lines(sha: bool, indent: str) -> list[str]:
    """Board lines printing the trailer (on a new line) of the bytes in ``v``."""
    if sha:
        digest = SHA_HEX.format(d="hashlib.sha256(v).digest()")
        return [indent + "import hashlib", indent + f"print('\\n#hil',len(v),{digest})"]
    return [
        indent + "x=1;y=0",
        indent + "for c in v:x+=c;y=(y+x)%65521",
        indent + "print('\\n#hil',len(v),x%65521,y)",
    ]


def trailer(data: bytes, sha: bool) -> bytes:
    """The trailer the board prints for ``data``."""
    if sha:
        return b"#hil %d %s" % (len(data), hashlib.sha256(data).hexdigest()[:16].encode())
    n, a, b = adler(data)
    return b"#hil %d %d %d" % (n, a, b)


def read_answer(out: bytes, sha: bool, *, where: str = "", tail: bytes = b"") -> Any:
    """The value ``_o`` printed (uncooked stdout), checked against its trailer."""
    body, _, end = out.rstrip(b"\n").rpartition(b"\n")
    if not body or not end.startswith(b"#hil "):
        raise LinkError(f"answer without its check line: {out[-60:]!r}", where=where, tail=tail)
    tag, payload = body[:1], body[1:]
    try:
        if tag in (b"b", b"B"):
            data = unescape(payload)
        elif tag in (b"a", b"A"):
            data = base64.b64decode(payload.replace(b"\n", b""), validate=True)
        elif tag == b"l":
            data = decode_repr_lines(payload)
        elif tag == b"r":
            data = payload
        else:
            raise ValueError(f"unknown answer tag {tag!r}")
    except ValueError as exc:
        raise LinkError(f"answer damaged: {exc}", where=where, tail=tail) from exc
    if trailer(data, sha) != end:
        raise LinkError(
            f"answer damaged in transit ({len(data)} bytes; the board said {end[:90]!r})",
            where=where,
            tail=tail,
        )
    if tag != b"r":
        return bytearray(data) if tag in (b"A", b"B") else data
    try:
        return parse_value(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LinkError(f"answer is not a literal: {exc}", where=where, tail=tail) from exc


def escape_raw(data: bytes) -> bytes:
    """How ``_o`` sends raw bytes: DLE doubled, ``\\x04`` (the REPL's frame end) as DLE 0x14."""
    return data.replace(b"\x10", b"\x10\x10").replace(b"\x04", b"\x10\x14")


def unescape(data: bytes) -> bytes:
    """Undo ``escape_raw``; a DLE followed by anything else is damage."""
    if _ESC not in data:
        return data
    out = bytearray()
    i = 0
    while True:
        j = data.find(b"\x10", i)
        if j < 0:
            out += data[i:]
            return bytes(out)
        out += data[i:j]
        nxt = data[j + 1 : j + 2]
        if nxt == b"\x10":
            out.append(0x10)
        elif nxt == b"\x14":
            out.append(0x04)
        else:
            raise ValueError(f"bad escape at byte {j}")
        i = j + 2
