"""The small programs ``Board`` sends to a board, each in the variants that firmware needs.

Why its own module: these are MicroPython source, not host code, and each must stay small (a
micro:bit has 7-9 kB of heap to compile and run it in) and clean (``helper`` runs the body in a
function that deletes itself, so the REPL's ``__main__``, which tests inspect, is left as it
was found). The variants are chosen by ``Board`` from the board's probed facts; the host halves
of their encodings are in ``hil.encoding``.
"""

from __future__ import annotations

from typing import Any


def helper(body: str, *args: Any, answer: str = "") -> str:
    """Board code that runs ``body`` inside a function and removes the function afterwards.
    ``answer``: the source of ``_o`` (``hil.checked.answer_function``), through which the body
    hands back its value, checked."""
    params = ", ".join(f"a{i}" for i in range(len(args)))
    lines = answer.strip("\n").split("\n") if answer else []
    lines += body.strip("\n").split("\n")
    indented = "".join("    " + line + "\n" for line in lines)
    call = ", ".join(repr(a) for a in args)
    return compact(
        f"def _hil({params}):\n{indented}try:\n    _hil({call})\nfinally:\n    del _hil\n"
    )


def indent(source: str) -> str:
    return "".join("    " + line + "\n" for line in source.strip("\n").split("\n"))


def compact(code: str) -> str:
    """One space per indentation level instead of four: a helper's source is held on the
    board's heap while it runs (checked code: as a literal too), and a micro:bit has 7 kB."""
    return "".join(
        " " * ((len(line) - len(line.lstrip(" "))) // 4) + line.lstrip(" ")
        for line in code.splitlines(keepends=True)
    )


#: ``machine.unique_id()`` as hex without ``binascii``; None where the board has none.
IDENTITY = """
import sys, os
try:
    import machine
    uid = ''.join('%02x' % b for b in machine.unique_id())
except Exception:
    uid = None
try:
    un = dict(zip(('sysname', 'nodename', 'release', 'version', 'machine'), os.uname()))
except Exception:
    un = {}
i = sys.implementation
_o((i.name, tuple(i.version), getattr(i, '_machine', ''), sys.platform, un, uid))
"""

#: a0: paths. sha256 per file, hex without ``binascii``; None for a missing file.
SHA256 = """
import hashlib
r = {}
for p in a0:
    try:
        f = open(p, 'rb')
    except OSError:
        r[p] = None
        continue
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(b[:n] if n < 512 else b)
    f.close()
    r[p] = ''.join('%02x' % c for c in h.digest())
_o(r)
"""

#: a0: paths, a1: bytes per step. Adler-32 in plain MicroPython, as (size, a, b): small
#: integers only (the host joins them), modulo once per step.
ADLER32 = """
r = {}
for p in a0:
    try:
        f = open(p, 'rb')
    except OSError:
        r[p] = None
        continue
    a, b, n = 1, 0, 0
    while True:
        d = f.read(a1)
        if not d:
            break
        n += len(d)
        for c in d:
            a += c
            b += a
        a %= 65521
        b %= 65521
    f.close()
    r[p] = (n, a, b)
_o(r)
"""

#: a0: directory. With ``os.ilistdir`` (sizes from the entries or ``os.stat``).
LS = """
import os
r = []
for e in os.ilistdir(a0):
    d = e[1] == 0x4000
    s = e[3] if len(e) > 3 and e[3] >= 0 else (0 if d else os.stat(a0.rstrip('/') + '/' + e[0])[6])
    r.append((e[0], d, s))
_o(r)
"""

#: a0: directory, a1: whether the filesystem has directories. Without ``os.ilistdir``:
#: ``os.listdir`` plus ``os.stat``, or ``os.size`` on a flat filesystem (micro:bit).
LS_PLAIN = """
import os
r = []
for n in os.listdir(a0) if a1 else os.listdir():
    if a1:
        s = os.stat(a0.rstrip('/') + '/' + n)
        d = s[0] & 0x4000 != 0
        r.append((n, d, 0 if d else s[6]))
    else:
        r.append((n, False, os.size(n)))
_o(r)
"""

MKDIR = """
import os
parts = a0.strip('/').split('/')
paths = ['/' * a0.startswith('/') + '/'.join(parts[:i + 1]) for i in range(len(parts))]
for p in paths if a1 else paths[-1:]:
    try:
        os.mkdir(p)
    except OSError as e:
        if e.args[0] != 17 or not (a2 or p != a0):
            raise
"""

RM = """
import os
def rm(p):
    try:
        os.remove(p)
    except OSError:
        if not a1:
            raise
        for n in os.listdir(p):
            rm(p.rstrip('/') + '/' + n)
        os.rmdir(p)
rm(a0)
"""


def get_code(style: str, sha: bool) -> str:
    """Body of the ``get`` helper (a0: path, a1: bytes per read): the file's bytes in the
    densest form the board can print (raw with two escapes, base64 lines, or one ``repr`` per
    line), then the trailer of ``hil.checked`` over the bytes read."""
    from hil.checked import BASE64, RAW, SHA_HEX

    if style == RAW:
        head = ["import sys", "w=sys.stdout.buffer.write", "w(b'b')"]
        out = r"w(b.replace(b'\x10',b'\x10\x10').replace(b'\x04',b'\x10\x14'))"
    elif style == BASE64:
        head = ["from binascii import b2a_base64", "print('a',end='')"]
        out = "print(str(b2a_base64(b),'ascii'),end='')"
    else:
        head = ["print('l')"]
        out = "print(repr(b))"
    if sha:
        head += ["import hashlib", "h=hashlib.sha256()"]
        add = "h.update(b)"
        end = f"print('#hil',n,{SHA_HEX.format(d='h.digest()')})"
    else:
        head += ["x=1;y=0"]
        add = "for c in b:x+=c;y=(y+x)%65521"
        end = "print('#hil',n,x%65521,y)"
    loop = [
        "n=0",
        "f=open(a0,'rb')",
        "while True:",
        "    b=f.read(a1)",
        "    if not b:",
        "        break",
        "    n+=len(b)",
        "    " + add,
        "    " + out,
        "f.close()",
        "print()",
        end,
    ]
    return "\n".join(head + loop) + "\n"


#: a0: the complete temp file, a1: the target. ``put``'s last step: atomic where the filesystem
#: renames atomically (LittleFS; FAT removes the target first, inside the board's rename).
RENAME = """
import os
os.rename(a0, a1)
"""

#: The same without ``os.rename`` (micro:bit): a copy on the board, in one exec.
COPY = """
import os
f = open(a0, 'rb')
g = open(a1, 'wb')
while True:
    b = f.read(256)
    if not b:
        break
    g.write(b)
f.close()
g.close()
os.remove(a0)
"""

#: What ``put`` binds in ``__main__`` while a transfer runs (and deletes at the end).
PUT_OPEN = "_hil_f = open({path!r}, 'wb')\n_hil_w = _hil_f.write\n"
PUT_BASE64 = "from binascii import a2b_base64 as _hil_a\n"
PUT_CLOSE = "_hil_f.close()\ndel _hil_f, _hil_w\n"
PUT_CLOSE_BASE64 = "_hil_f.close()\ndel _hil_f, _hil_w, _hil_a\n"
