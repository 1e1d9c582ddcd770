"""Ask a board what it has, once: platform, version, heap, and the features our helpers use.

Why ask instead of assume: real firmware differs from our virtual board in ways no list can
foresee (MicroPython 1.9 on a micro:bit has no ``sys.modules``, ``hashlib``, ``binascii`` or
``os.ilistdir`` and about 9 kB of heap). The board API picks its encodings and helpers from
these facts, and tests skip with a reason that names what the board lacks.

The probe is one short program (a few hundred bytes of bytecode: it must compile and run in a
7 kB heap), run inside a function that deletes itself, so it leaves no name in ``__main__``;
its test file is removed again. It prints one ``repr`` of plain values, parsed on the host as
a literal (never evaluated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hil.errors import ConfigError, LinkError, ProtocolError, RemoteError
from hil.replparse import parse_value

if TYPE_CHECKING:
    from hil.board import Board

#: Every feature name the probe can report (``BoardFacts.features`` holds a subset).
FEATURES = (
    "sys.modules",  # sys.modules exists (module cache visible)
    "hashlib",  # hashlib.sha256
    "binascii",  # binascii.a2b_base64 and b2a_base64
    "stdout.buffer",  # sys.stdout.buffer.write: binary output (compact answers)
    "vfs",  # the vfs module, or os.mount (a mount table)
    "os.ilistdir",
    "os.stat",
    "os.rename",
    "os.mkdir",  # directories: without it the filesystem is flat (micro:bit)
    "machine.unique_id",
    "gc",  # gc.mem_free
    "writable-fs",  # a tiny file was written, read back and removed
    "raw-paste",  # the raw REPL accepted raw-paste on this connection
    "sd",  # an SD card was found (see ``SdFact``)
)

#: The board side. Short names, one-space indents and no big literals: it must compile on a
#: 7 kB heap. ``h(name, module, *attrs)`` records ``name`` when the module has every attr.
#: Two execs, each under a kilobyte: on a link without flow control each travels checked
#: (``hil.checked``), which needs heap for a second copy of the code. The first prints the
#: platform, version, ``os.uname()`` and the features found by import; the second the
#: filesystem and SD card facts.
PROBE_SOURCES = (
    """\
def _hil():
 import sys
 f=[]
 def h(n,x,*a):
  try:
   x=__import__(x)
   for y in a:getattr(x,y)
   f.append(n)
  except Exception:pass
 h('sys.modules','sys','modules')
 h('hashlib','hashlib','sha256')
 h('binascii','binascii','a2b_base64','b2a_base64')
 try:sys.stdout.buffer.write;f.append('stdout.buffer')
 except Exception:pass
 h('vfs','vfs','mount')
 h('vfs','os','mount')
 for y in('ilistdir','stat','rename','mkdir'):h('os.'+y,'os',y)
 h('machine.unique_id','machine','unique_id')
 h('gc','gc','mem_free')
 import os
 u={}
 try:u=dict(zip(('sysname','nodename','release','version','machine'),os.uname()))
 except Exception:pass
 i=sys.implementation
 r=repr((sys.platform,i.name,tuple(i.version),u,f));print(r);print(r)
try:_hil()
finally:del _hil
""",
    """\
def _hil():
 import os
 f=[]
 n='_hilprobe.tmp'
 try:
  w=open(n,'wb');w.write(b'h');w.close()
  w=open(n,'rb')
  if w.read()==b'h':f.append('writable-fs')
  w.close()
 except Exception:pass
 try:os.remove(n)
 except Exception:pass
 def v(p):
  try:return os.statvfs(p)
  except Exception:return p
 s=None
 for p in('/sd','/sdcard'):
  t=v(p)
  if t!=p and t!=v('/'):s=('mounted',p,None);break
 if not s:
  try:
   import machine
   c=machine.SDCard();c.info();s=('machine.SDCard',None,getattr(c,'slot',None))
   getattr(c,'deinit',int)()
  except Exception:pass
 if not s:
  try:
   import pyb
   if pyb.SDCard().present():s=('pyb.SDCard',None,None)
  except Exception:pass
 r=repr((f,s));print(r);print(r)
try:_hil()
finally:del _hil
""",
)
#: The whole probe as one program (for reading; ``probe`` sends ``PROBE_SOURCES``).
PROBE_SOURCE = "".join(PROBE_SOURCES)


MEM_FREE_SOURCE = "__import__('gc').collect();print(__import__('gc').mem_free())"


@dataclass(frozen=True)
class SdFact:
    """How a card was found: ``driver`` is ``"mounted"`` (already mounted at ``mount``),
    ``"machine.SDCard"`` (constructed with no arguments and answered ``info()``; ``slot`` when
    the driver tells) or ``"pyb.SDCard"`` (``present()`` was true)."""

    driver: str
    mount: str | None = None
    slot: int | None = None


@dataclass(frozen=True)
class BoardFacts:
    """What a board said about itself (see ``probe``). Open values: ``platform`` is whatever
    ``sys.platform`` says (``microbit``, ``esp32``, ``linux``, ...)."""

    platform: str
    implementation: str
    version: tuple[int, ...]
    uname: Mapping[str, str] = field(default_factory=dict)
    mem_free: int | None = None
    features: frozenset[str] = frozenset()
    sd: SdFact | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "uname", MappingProxyType(dict(self.uname)))
        object.__setattr__(self, "features", frozenset(self.features))

    def has(self, feature: str) -> bool:
        return feature in self.features

    def lacks(self, *features: str) -> list[str]:
        """The ones of ``features`` the board does not have, in the order given."""
        return [name for name in features if name not in self.features]

    def as_dict(self) -> dict[str, Any]:
        """For reports and ``hil rack check``: JSON-able."""
        return {
            "platform": self.platform,
            "implementation": self.implementation,
            "version": list(self.version),
            "uname": dict(self.uname),
            "mem_free": self.mem_free,
            "features": sorted(self.features),
            "sd": None
            if self.sd is None
            else {"driver": self.sd.driver, "mount": self.sd.mount, "slot": self.sd.slot},
        }

    @classmethod
    def everything(cls, platform: str = "unknown") -> BoardFacts:
        """Facts of a board that has every feature (for boards declared rather than probed,
        and for tests of the host side)."""
        return cls(platform, "micropython", (), features=frozenset(FEATURES) - {"sd"})


class MissingFeature(ConfigError):
    """The board lacks what a call needs (a usage error: ask ``board.facts`` first)."""

    def __init__(self, what: str, features: list[str], *, where: str = "") -> None:
        self.features = features
        super().__init__(f"{what}: the board lacks {', '.join(features)}", where=where)


def parse_facts(
    text: str, *, mem_free: int | None = None, raw_paste: bool | None = None, where: str = ""
) -> BoardFacts:
    """The probe's printed line to ``BoardFacts`` (``mem_free`` and ``raw_paste`` come from
    elsewhere: the heap measured without the probe in it, and what the REPL saw)."""
    try:
        value = parse_value(text)
        platform, name, version, uname, features, sd = value
        facts = BoardFacts(
            platform=str(platform),
            implementation=str(name),
            version=tuple(v for v in version if isinstance(v, int)),  # 'preview' dropped
            uname={str(k): str(v) for k, v in dict(uname).items()},
            mem_free=mem_free,
            features=frozenset(str(f) for f in features) | ({"raw-paste"} if raw_paste else set()),
            sd=None if sd is None else SdFact(str(sd[0]), sd[1], sd[2]),
        )
    except (ValueError, TypeError) as exc:
        raise ProtocolError(
            f"the board's probe answered {text[:200]!r}: {exc}", where=where
        ) from exc
    if facts.sd is not None:
        facts = _with(facts, "sd")
    return facts


def _with(facts: BoardFacts, feature: str) -> BoardFacts:
    return BoardFacts(
        facts.platform,
        facts.implementation,
        facts.version,
        facts.uname,
        facts.mem_free,
        facts.features | {feature},
        facts.sd,
    )


def probe(board: Board, *, timeout: float = 20.0) -> BoardFacts:
    """Ask the board once (two short execs) what it has; see ``BoardFacts``."""
    repl = board.repl
    repl.note("probe what the board has")
    try:
        first, second = (_twice(repl.exec(code, timeout=timeout), board) for code in PROBE_SOURCES)
    except RemoteError as exc:  # our own code: whatever it raised is the rig's problem
        raise ProtocolError(f"the probe failed on the board: {exc.what}", where=board.name) from exc
    return parse_facts(
        _joined(first.decode("utf-8", "replace"), second.decode("utf-8", "replace")),
        mem_free=measure_heap(board),
        raw_paste=repl.raw_paste is True,
        where=board.name,
    )


def _twice(out: bytes, board: Board) -> bytes:
    """The probe prints each answer twice (cheaper on a 7 kB heap than a checksum, and the
    facts decide which checksum the board has): two copies that differ were altered on the way,
    and facts that drive skips and encodings must not be wrong."""
    lines = out.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")
    if len(lines) != 2 or lines[0] != lines[1]:
        raise LinkError(
            f"the probe's answer was altered on the way: {out[:200]!r}",
            where=board.name,
            tail=board.transport.tail,
        )
    return lines[0]


def _joined(first: str, second: str) -> str:
    """The two probe answers as the one tuple ``parse_facts`` reads (unparseable halves are
    passed on as they are, for its error message)."""
    try:
        platform, name, version, uname, features = parse_value(first)
        more, sd = parse_value(second)
    except (ValueError, TypeError):
        return f"{first.strip()} {second.strip()}"
    return repr((platform, name, version, uname, list(features) + list(more), sd))


def measure_heap(board: Board, *, timeout: float = 5.0) -> int | None:
    """Free heap after a collection, measured by a one-line exec (the probe's own code would
    take half of a micro:bit's heap), binding no name; None without ``gc.mem_free``."""
    try:
        out = board.repl.exec(MEM_FREE_SOURCE, timeout=timeout)
    except RemoteError:
        return None
    try:
        return int(out.strip())
    except ValueError as exc:
        raise ProtocolError(
            f"gc.mem_free() answered {out[:60]!r}", where=board.name, tail=out
        ) from exc
