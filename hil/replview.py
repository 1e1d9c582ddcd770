"""The REPL view: a board's transcript as a person at its REPL would have seen it.

The wire carries the raw REPL protocol (``\\x05A\\x01``, flow-control acks, ``\\x04`` frames) in
chunks that split lines anywhere. A person debugging a failure wants what they would have seen
typing the same code at the friendly prompt::

    >>> import sdcard_helper
    >>> sdcard_helper._mounted
    True

So this module reads the transcript by protocol: each exchange (a note ``exec ...`` from the
REPL driver, then its bytes) becomes the code at ``>>>``/``...`` prompts followed by its output
and traceback; soft resets, recovery and the framework's own remarks become ``#`` notes; an
``eval`` shows as the expression it evaluated; the helper programs of a named action (``put``,
``deploy``, the probe) fold into one line unless one of them failed. Board text is data:
control characters stay escaped. The wire itself stays available (``Transcript.render``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hil import board_text
from hil.replrun import UNCHECKED_AGAIN, UNCHECKED_HEAD
from hil.transcript import CHECK, GROUP, QUIET, Direction, Entry, action_record

PS1, PS2 = ">>> ", "... "
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_END = b'Type "help()" for more information.\r\n'
#: Notes of the REPL driver that start an exchange, and what kind it is.
_STARTS = (
    ("exec ", "exec"),
    ("launch ", "launch"),
    ("soft reset", "soft reset"),
    ("enter raw REPL", "enter"),
    ("interrupt", "interrupt"),
    ("friendly ", "friendly"),
)
#: Notes nobody reading the REPL needs (the test's name is the attachment's owner).
_HIDDEN = (
    "test: ",
    "sync: ",
    "exec ",
    "launch ",
    "friendly ",
    "probe what",
    "put ",
    UNCHECKED_AGAIN,  # said once in full (``UNCHECKED``), then on the wire only
)
#: Notes that hold for a whole session once said: a view shows the first of them only (the
#: REPL driver says it again after each reset, for whoever reads from there).
_ONCE = (UNCHECKED_HEAD,)
_EVAL = re.compile(rb"\Aprint\(repr\((.*)\)\)\Z", re.DOTALL)
#: An ``eval`` whose answer comes back checked (``hil.checked``: ``_o`` prints it and a trailer).
_EVAL_CHECKED = re.compile(
    rb"\Adef _hil\(\):\n.*?\n return _o\ntry:\n _hil\(\)\(\(\n(.*)\n\)\)\nfinally:\n del _hil\n?\Z",
    re.DOTALL,
)


def eval_expression(code: bytes) -> bytes | None:
    """The expression of an ``eval`` as the REPL driver or the board sends it, else None."""
    for pattern in (_EVAL, _EVAL_CHECKED):
        match = pattern.match(code.strip() + (b"\n" if pattern is _EVAL_CHECKED else b""))
        if match:
            return match.group(1)
    return None


def answer_text(out: bytes) -> bytes:
    """What a checked answer (``_o``'s value line and ``#hil`` trailer) shows at a prompt: the
    value's repr, as the REPL echoes an expression; other output as it is."""
    body, _, end = out.rstrip(b"\r\n").rpartition(b"\n")
    if not end.startswith(b"#hil ") or not body:
        return out
    body = body.rstrip(b"\r")
    if body[:1] == b"r":
        return body[1:] + b"\n"
    try:
        from hil.checked import read_answer

        for sha in (True, False):
            try:
                return repr(read_answer(out.replace(b"\r\n", b"\n"), sha)).encode() + b"\n"
            except Exception:
                continue
    except ImportError:  # pragma: no cover
        pass
    return out


#: Bytes that are protocol, not what a person sees: raw banners and prompts, sync lines.
_NOISE = re.compile(
    rb"\r?\n?raw REPL; CTRL-B to exit\r\n>|OKhil-sync [0-9a-f]+\r\n\x04\x04>|R\x00>?"
)


def readable(data: bytes) -> str:
    """Board bytes as lines of text: CR LF as a newline, invalid UTF-8 as ``\\xNN``, every
    other control character escaped by ``hil.board_text``'s rule (newline and tab kept)."""
    text = data.replace(b"\r\n", b"\n").decode("utf-8", "backslashreplace")
    return board_text.escape(text)


#: Where one raw REPL answer ends and the board waits again: its prompts (``board_lines``).
_PROMPTS = re.compile(rb"\r?\n?raw REPL; CTRL-B to exit\r\n>|\x04\x04>|\x04>")
#: How an answer starts, before the code's output: raw-paste's start and window (or its
#: refusal), flow-control acks and end of input, plain raw's ``OK``, checked code's mark.
_ANSWER_START = re.compile(rb"\A(?:R\x01..|R\x00)?\x01*(?:\x04|OK)?\x06?", re.DOTALL)
#: Lines that are the framework's own framing, not anything the code printed.
_OWN_LINE = re.compile(r"\A(?:hil-sync \d+|#hil \d+ [0-9a-f ]+)\Z")


def board_lines(data: bytes, *, whole: bool, lines: int = 5, chars: int = 200) -> list[str]:
    """What a person at the REPL would have seen of bytes the board sent (an error's tail):
    the raw REPL's framing left out, each answer's output and traceback as lines (blank ones
    dropped), the last ``lines`` of them within about ``chars`` characters, escaped. ``whole``:
    ``data`` starts where an answer starts; else its first line, likely cut mid-word, is left
    out (or shown from ``...`` when it is all there is)."""
    parts = _PROMPTS.split(bytes(data))
    text = b"\n".join(
        (_ANSWER_START.sub(b"", part, count=1) if i or whole else part).replace(b"\x04", b"\n")
        for i, part in enumerate(parts)
    )
    shown = readable(text).split("\n")
    partial = not whole and bool(shown) and shown[0] != ""
    if partial and len([line for line in shown if line.strip()]) > 1:
        shown, partial = shown[1:], False
    kept = [line for line in shown if line.strip() and not _OWN_LINE.match(line)]
    kept = kept[-lines:]
    while len(kept) > 1 and sum(len(line) + 1 for line in kept) > chars:
        kept.pop(0)
    if kept and (len(kept[0]) > chars or partial):
        kept[0] = "..." + kept[0][-chars:]
    return kept


@dataclass
class Segment:
    """One exchange as the wire carried it: what started it, the bytes each way, remarks."""

    kind: str
    note: str = ""
    tx: bytearray = field(default_factory=bytearray)
    rx: bytearray = field(default_factory=bytearray)
    remarks: list[str] = field(default_factory=list)


@dataclass
class Shown:
    """A rendered exchange: its lines, and whether it is worth showing inside a folded action
    (it failed, or the board did not finish answering)."""

    lines: list[str]
    remarkable: bool = False


def code_lines(code: bytes) -> list[str]:
    """Code as typed at the prompts: ``>>>`` first, ``...`` after; a block ends with ``...``."""
    expression = eval_expression(code)
    if expression is not None:
        code = expression
    text = readable(code).strip("\n")
    lines = text.split("\n") if text else [""]
    shown = [PS1 + lines[0]] + [PS2 + line for line in lines[1:]]
    if len(lines) > 1 and lines[-1][:1] in (" ", "\t"):
        shown.append(PS2.rstrip())
    return shown


def _text_lines(data: bytes) -> list[str]:
    text = readable(bytes(data))
    if not text:
        return []
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def _screen_rest(data: bytes) -> list[str]:
    """Bytes after an exchange's end: banners a person sees, minus protocol noise."""
    data = _NOISE.sub(b"", bytes(data)).replace(b"\x04", b"")
    if data.endswith(PS1.encode()):
        data = data[: -len(PS1)]
    data = data.strip(b"\r\n>")
    return _text_lines(data) if data.strip() else []


def unwrap_code(code: bytes) -> tuple[bytes, bool]:
    """The user's code inside the integrity wrapper of ``hil.checked`` (code that travels with
    a checksum: the board checks it, prints a mark, then runs it), and whether it was wrapped."""
    from hil.checked import inner_code

    inner = inner_code(code)
    return (code, False) if inner is None else (inner, True)


def _unwrap_output(out: bytes | None, err: bytes | None) -> tuple[bytes | None, bytes | None, str]:
    """Output of wrapped code as if sent directly: the mark gone, the wrapper's frames too."""
    try:
        from hil.checked import MARK, _user_traceback
    except ImportError:  # pragma: no cover
        return out, err, ""
    if out is not None and out.startswith(MARK):
        return out[len(MARK) :], _user_traceback(err) if err else err, ""
    if out is None:
        return out, err, ""
    return out, err, "(the code did not arrive whole: the board refused to run it)"


def exec_parts(tx: bytes, rx: bytes) -> tuple[bytes, bytes | None, bytes | None, bytes]:
    """(code, stdout, stderr, rest) of a raw REPL execution; None where the board's answer
    ended first. Raw-paste (``R\\x01``, window, acks, ``\\x04``) and plain raw (``OK``) alike."""
    code = bytes(tx)
    while code.startswith(b"\x05A\x01"):
        code = code[3:]
    code = code.split(b"\x04", 1)[0]
    i, paste = 0, False
    while True:
        if rx.startswith(b"R\x01", i):
            i, paste = i + 4, True
        elif rx.startswith(b"R\x00", i):
            i += 3 if rx[i + 2 : i + 3] == b">" else 2
        elif rx.startswith(RAW_BANNER + b">", i):
            i += len(RAW_BANNER) + 1
        else:
            break
    if paste:
        while rx[i : i + 1] == b"\x01":
            i += 1
        if rx[i : i + 1] == b"\x04":
            i += 1
    else:
        ok = rx.find(b"OK", i)
        if ok < 0:
            return code, None, None, b""
        i = ok + 2
    end_out = rx.find(b"\x04", i)
    if end_out < 0:
        return code, bytes(rx[i:]), None, b""
    end_err = rx.find(b"\x04", end_out + 1)
    if end_err < 0:
        return code, bytes(rx[i:end_out]), bytes(rx[end_out + 1 :]), b""
    return code, bytes(rx[i:end_out]), bytes(rx[end_out + 1 : end_err]), bytes(rx[end_err + 1 :])


def _eval_traceback(match: re.Match[bytes], err: bytes | None) -> bytes | None:
    """An ``eval``'s traceback as the expression typed at ``>>>`` gives it (line 1 where it
    starts; the helper's frames gone: ``hil.checked.expression_traceback``)."""
    if not err:
        return err
    from hil.checked import expression_traceback

    first = match.string[: match.start(1)].count(b"\n") + 1
    last = first + match.group(1).count(b"\n")
    text = err.decode("utf-8", "surrogateescape")
    return expression_traceback(text, first, last).encode("utf-8", "surrogateescape")


def render_segment(segment: Segment) -> Shown:
    """The lines a person would have seen for one exchange."""
    kind, tx, rx = segment.kind, bytes(segment.tx), bytes(segment.rx)
    lines: list[str] = []
    remarkable = False
    if kind in ("exec", "launch"):
        code, out, err, rest = exec_parts(tx, rx)
        code, wrapped = unwrap_code(code)
        damaged = ""
        if wrapped and kind == "exec":
            out, err, damaged = _unwrap_output(out, err)
        checked_eval = _EVAL_CHECKED.match(code.strip() + b"\n") if kind == "exec" else None
        if checked_eval is not None:
            out = answer_text(out) if out else out
            err = _eval_traceback(checked_eval, err)
        unsent = not code.strip() and bool(segment.note)
        if unsent:  # the board never took it: the driver's note still says what it was
            code = re.sub(rb"\.\.\. \(\d+ bytes\)$", b" ...", segment.note.encode())
            code = code.replace(b"\\n", b"\n")
        lines += code_lines(code)
        if unsent:
            lines.append("# (not sent: the board did not take the code)")
        if damaged:
            lines.append(f"# {damaged}")
        if kind == "launch":
            lines.append("# (started; not waiting for it to finish)")
        else:
            lines += _text_lines(out or b"")
            lines += _text_lines(err or b"")
            remarkable = bool(err and err.strip())
            if err is None or (not rest.startswith(b">") and not rest.strip()):
                lines.append("# (the board's answer ends here)")
                remarkable = True
            elif rest.startswith(b">"):
                rest = rest[1:]
            lines += _screen_rest(rest)
    elif kind == "soft reset":
        body = rx[4:] if rx.startswith(b"OK\r\n") else rx
        lines.append("# soft reset (Ctrl-D)")
        lines += _screen_rest(body)
    elif kind == "enter":
        lines.append("# interrupt (Ctrl-C) and enter the raw REPL (Ctrl-A)")
        lines += _screen_rest(rx)
        if RAW_BANNER not in rx:
            lines.append("# (no raw REPL prompt came back)")
            remarkable = True
    elif kind == "interrupt":
        lines.append("# interrupt (Ctrl-C)")
        lines += _screen_rest(rx)
    elif kind == "friendly":
        from hil.friendly import render_screen

        body = _NOISE.sub(b"", rx)
        if body.endswith(PS1.encode()):
            body = body[: -len(PS1)]
        screen = board_text.escape(render_screen(body)).rstrip("\n")  # C1 and DEL too
        lines += [PS1 + line if i == 0 else line for i, line in enumerate(screen.split("\n"))]
        remarkable = "Traceback (most recent call last)" in screen
    else:
        lines += _screen_rest(rx)
    lines += [f"# {remark}" for remark in segment.remarks]
    return Shown(lines, remarkable)


@dataclass
class _Open:
    title: str
    mode: str
    lines: list[str] = field(default_factory=list)
    remarkable: bool = False
    folded: bool = False


class _View:
    """Walks entries, cutting them into exchanges and folding the framework's actions."""

    def __init__(self, *, fold: bool = True) -> None:
        self.fold = fold
        self.lines: list[str] = []
        self.stack: list[_Open] = []
        self.segment: Segment | None = None
        self.said: set[str] = set()  # notes of ``_ONCE`` already shown

    def emit(self, shown: Shown) -> None:
        target = self.stack[-1].lines if self._folding() else self.lines
        target.extend(shown.lines)
        if self._folding():
            for act in self.stack:
                act.remarkable |= shown.remarkable

    def _folding(self) -> bool:
        return any(a.folded for a in self.stack)

    def flush(self) -> None:
        if self.segment is not None:
            shown = render_segment(self.segment)
            if shown.lines:
                self.emit(shown)
            self.segment = None

    def note(self, text: str) -> None:
        for prefix, kind in _STARTS:
            if text.startswith(prefix):
                self.flush()
                self.segment = Segment(kind, text[len(prefix) :])
                return
        if text.startswith(_HIDDEN):
            return
        once = next((p for p in _ONCE if text.startswith(p)), None)
        if once is not None:
            if once in self.said:
                return
            if not self._folding():
                self.said.add(once)
        if text.startswith("recovery: "):  # a board brought back: never folded away
            for act in self.stack:
                act.remarkable = True
        if self.segment is None or not self.segment.tx:  # before the code: said before it
            self.emit(Shown([f"# {text}"]))
        else:
            self.segment.remarks.append(text)

    def begin(self, fields: dict[str, object]) -> None:
        self.flush()
        mode = str(fields.get("mode", GROUP))
        title = str(fields.get("title", ""))
        folded = (self.fold and mode in (GROUP, QUIET, CHECK)) or self._folding()
        self.stack.append(_Open(title, mode, folded=folded))
        if not folded:
            self.emit(Shown([f"# {title}"]))

    def end(self, fields: dict[str, object]) -> None:
        self.flush()
        if not self.stack:
            return
        act = self.stack.pop()
        title = str(fields.get("title", act.title))
        error = fields.get("error")
        if not act.folded:
            if error:
                self.emit(Shown([f"# {title}: failed: {error}"], True))
            return
        if self._folding():  # nested in a folded action: its lines go to the outer one
            self.stack[-1].lines.extend(act.lines)
            self.stack[-1].remarkable |= act.remarkable or bool(error)
            return
        if act.mode == QUIET:  # the framework's bookkeeping: on the wire only, even failed
            return
        if error or act.remarkable:
            head = f"# {title}" + (f": failed: {error}" if error else "")
            self.lines.append(head)
            self.lines.extend(act.lines)
        elif act.mode not in (QUIET, CHECK):
            self.lines.append(f"# {title}")

    def walk(self, entries: Iterable[Entry]) -> list[str]:
        for entry in entries:
            direction = entry.direction
            if direction is Direction.NOTE:
                self.note(entry.data.decode("utf-8", "replace"))
            elif direction is Direction.BEGIN:
                self.begin(action_record(entry))
            elif direction is Direction.END:
                self.end(action_record(entry))
            else:
                if self.segment is None:
                    self.segment = Segment("other")
                buf = self.segment.tx if direction is Direction.TX else self.segment.rx
                buf += entry.data
        self.flush()
        while self.stack:  # actions still running when the view was taken
            act = self.stack[-1]
            self.end({"title": act.title + " (still running)"})
        return self.lines


def repl_view(entries: Sequence[Entry] | Iterable[Entry], *, fold: bool = True) -> str:
    """The REPL view of transcript entries (``Transcript.entries(since)``). ``fold``: the
    framework's actions (put, deploy, probe) as one line each unless they failed; without it
    their helper programs are shown too."""
    return "\n".join(_View(fold=fold).walk(entries))


def exchange_view(kind: str, sent: bytes, received: bytes) -> str:
    """The REPL view of one exchange from its bytes (``hil.repl.Exchange``)."""
    known = {k for _, k in _STARTS}
    return "\n".join(
        render_segment(
            Segment(kind if kind in known else "other", tx=bytearray(sent), rx=bytearray(received))
        ).lines
    )


def tail(text: str, lines: int = 40, *, rest: str = "") -> str:
    """The last ``lines`` lines of a view, saying how many came before and, in ``rest``,
    where the whole session is (``see the report's REPL session``)."""
    all_lines = text.split("\n")
    if len(all_lines) <= lines:
        return text
    cut = len(all_lines) - lines
    head = f"{cut} earlier line{'s' if cut > 1 else ''}" + (f": {rest}" if rest else "")
    return f"# ({head})\n" + "\n".join(all_lines[-lines:])
