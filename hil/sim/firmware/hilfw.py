# The virtual board's firmware: what a real board's C runtime does, written for the MicroPython
# unix port. The host process (hil/sim/host.py) runs board_main.py, which runs this module,
# inside a pty whose line discipline turns "\n" into "\r\n", as a board's cooked stdout does.
# So every string below ends lines with a bare "\n": the pty adds the "\r".
#
# One process is one "power-on": a soft reset ends this process and the host starts a fresh
# interpreter (heap, sys.modules and mount table gone; flash and card images kept), exactly the
# state a board has after its soft-reset path. Protocol byte sequences follow
# shared/runtime/pyexec.c of MicroPython.
#
# Talks to the host through two pipes ("the link"); the message codes and their meaning are in
# linkcodes.py, shared with the host (hil/sim/link.py).

import builtins
import micropython
import os
import select
import sys
import time
import vfs

import linkcodes as code
from replrules import auto_indent, continue_with_input

FLASH_BLOCK_SIZE = 4096
WINDOW = 128  # raw-paste flow-control window, as on boards with a 256-byte stdin buffer
FIRMWARE_MAGIC = b"HILFW1\n"
FRESH_BOOT_PY = b"# This file is executed on every boot (including wake-boot from deepsleep)\n"

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5


class SoftReset(Exception):
    pass


def shielded(action):
    """Run ``action`` to its end even if a late KeyboardInterrupt lands in it (run it again:
    the actions given here are idempotent or write once at their very end)."""
    while True:
        try:
            return action()
        except KeyboardInterrupt:
            pass


def env(name, default=None):
    value = os.getenv("HIL_" + name)
    return default if value is None else value


class Link:
    """Requests and events to the host process."""

    def __init__(self, rfd, wfd):
        self.r = open(rfd, "rb")
        self.w = open(wfd, "wb")

    def event(self, text):
        self.w.write(text.encode() + b"\n")

    def request(self, text, payload=b""):
        self.w.write(text.encode() + b"\n" + payload)
        header = self.r.readline().decode().strip()
        kind, _, rest = header.partition(" ")
        if kind == code.REPLY_OK:
            n = int(rest)
            return self.r.read(n) if n else b""
        number, _, message = rest.partition(" ")
        raise OSError(int(number), message) if message else OSError(int(number))


class Board:
    """What modules of the board's firmware (machine.py, os.py in ROMFS) reach via builtins._hil."""

    def __init__(self, link):
        self.link = link
        self.version = "v1.0.0"
        self.build_date = "2026-01-01"
        self.name = env("BOARD", "HIL virtual board")
        self.mcu = env("MCU", "unix")
        self.uid = bytes.fromhex(env("UID", "00"))
        self.card_slot = int(env("CARD_SLOT", "1"))
        self.reset_cause = int(env("RESET_CAUSE", "1"))

    def hard_reset(self):
        self.link.event(code.HARD_RESET)
        while True:  # the host kills this interpreter; nothing after machine.reset() runs
            time.sleep(1)

    def bootloader(self):
        self.link.event(code.BOOTLOADER)
        while True:
            time.sleep(1)

    def card(self, op, slot, block=0, count=0, data=b""):
        # op: code.CARD_INIT, CARD_READ or CARD_WRITE (rom/machine.py passes the letters)
        return self.link.request("%s %s %d %d %d" % (code.CARD, op, slot, block, count), data)


class FileBlockDevice:
    """The flash chip: a host file opened before the host filesystem went out of reach."""

    def __init__(self, f, blocks):
        self.f = f
        self.blocks = blocks

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * FLASH_BLOCK_SIZE + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        self.f.seek(n * FLASH_BLOCK_SIZE + (off or 0))
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return FLASH_BLOCK_SIZE
        if op == 6:  # erase: littlefs needs no real erase on a file
            return 0
        return 0


class Console:
    """The board's UART: buffered non-blocking reads that wait in poll(), and raw writes."""

    def __init__(self, fd):
        self.inp = open(fd, "rb")
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)
        self.buf = b""
        self.pos = 0
        self.out = sys.stdout.buffer

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.out.write(data)

    def write_all(self, data):
        """Write all of ``data`` once, whatever late KeyboardInterrupt lands in between."""
        view = memoryview(data)
        while len(view):
            try:
                view = view[self.out.write(view) or 0 :]
            except KeyboardInterrupt:
                pass

    def getc(self):
        while self.pos >= len(self.buf):
            try:
                self.poller.poll(-1)
                chunk = self.inp.read(4096)
            except KeyboardInterrupt:
                # the host sent SIGINT for a Ctrl-C just as user code finished: it is a Ctrl-C
                return CTRL_C
            if chunk:
                self.buf = chunk
                self.pos = 0
        c = self.buf[self.pos]
        self.pos += 1
        return c


class Firmware:
    def __init__(self):
        self.link = Link(int(env("LINK_R")), int(env("LINK_W")))
        self.board = Board(self.link)
        self.console = Console(int(env("STDIN_FD")))
        self.mode = env("MODE", "friendly")
        self.main_globals = None

    # --- boot -------------------------------------------------------------------------------

    def boot(self):
        if env("BOOT", "cold") == "soft":
            self.console.write("MPY: soft reboot\n")
        self.load_firmware_image()
        self.mount_flash()
        builtins._hil = self.board
        sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", "/lib"]
        sys.argv[:] = []
        os.chdir("/")
        import __main__

        self.main_globals = __main__.__dict__
        for name in list(self.main_globals):
            if name != "__name__":
                del self.main_globals[name]
        for name in list(sys.modules):
            del sys.modules[name]

    def load_firmware_image(self):
        path = env("FIRMWARE")
        if not path:
            return
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(FIRMWARE_MAGIC):
            return
        end = data.index(b"\n", len(FIRMWARE_MAGIC))
        header = data[len(FIRMWARE_MAGIC) : end].decode()
        for item in header.split(";"):
            key, _, value = item.partition("=")
            if key == "version":
                self.board.version = value
            elif key == "date":
                self.board.build_date = value
        rom = memoryview(data)[end + 1 :]
        if len(rom):
            vfs.mount(vfs.VfsRom(rom), "/rom")

    def mount_flash(self):
        f = open(env("FLASH"), "r+b")
        f.seek(0, 2)
        bdev = FileBlockDevice(f, f.tell() // FLASH_BLOCK_SIZE)
        fresh = False
        try:
            fs = vfs.VfsLfs2(bdev)
        except OSError:
            vfs.VfsLfs2.mkfs(bdev)
            fs = vfs.VfsLfs2(bdev)
            fresh = True
        vfs.umount("/")
        vfs.mount(fs, "/")
        if fresh:
            with open("/boot.py", "wb") as boot_py:
                boot_py.write(FRESH_BOOT_PY)

    def run_boot_files(self):
        delay = float(env("BOOT_DELAY", "0"))
        if delay:
            self.guarded(lambda: time.sleep(delay))
        self.run_file("boot.py")
        if self.mode == "friendly":
            self.run_file("main.py")

    def run_file(self, name):
        try:
            with open(name) as f:
                source = f.read()
        except OSError:
            return
        self.guarded(lambda: exec(compile(source, name, "exec"), self.main_globals))

    # --- executing user code ----------------------------------------------------------------

    def guarded(self, fn, raw=False):
        """Run user code, reporting like pyexec.c; True when it ended normally.

        In the raw REPL (``raw``) the board frames the outcome: EOF after the output, the
        traceback if any, EOF again. An uncaught SystemExit soft-resets the board.

        Ctrl-C interrupts every execution afresh, as pyexec.c sets it before each one: what
        ``micropython.kbd_intr(-1)`` turned off stays off only to the end of that execution
        (the host, seeing no SIGINT handler meanwhile, hands the byte over as input).
        """
        micropython.kbd_intr(CTRL_C)
        self.link.event(code.EXECUTING)
        outcome = None
        try:
            fn()
        except BaseException as e:  # noqa: B036 - a board reports everything, even KeyboardInterrupt
            outcome = e
        shielded(lambda: micropython.kbd_intr(CTRL_C))
        # From here on a Ctrl-C is no longer the user's: one the host sent while it still saw
        # us executing lands in this code. Finish the report as a board does, and absorb it.
        report = self.outcome_bytes(outcome, raw)
        shielded(lambda: self.link.event(code.IDLE))
        self.console.write_all(report)
        if isinstance(outcome, SystemExit):
            raise SoftReset()
        return outcome is None

    def outcome_bytes(self, outcome, raw):
        """What the board prints after the user's code: EOF markers and the traceback."""
        if outcome is None or isinstance(outcome, SystemExit):
            return b"\x04\x04" if raw else b""
        text = shielded(lambda: self.format_exception(outcome))
        return b"\x04" + text + b"\x04" if raw else text

    def format_exception(self, e):
        """The traceback as a board prints it (bytes: a name in it need not be UTF-8), without
        the frames of this firmware."""
        import io

        text = io.BytesIO()
        sys.print_exception(e, text)
        lines = [
            line
            for line in text.getvalue().split(b"\n")
            if not (line.startswith(b'  File "/') and b"/hil/sim/firmware/" in line)
        ]
        return b"\n".join(lines)

    # --- friendly REPL ----------------------------------------------------------------------

    def banner(self):
        self.console.write(
            "MicroPython %s on %s; %s with %s\nType \"help()\" for more information.\n"
            % (self.board.version, self.board.build_date, self.board.name, self.board.mcu)
        )

    def readline(self, prompt, text_before=""):
        """Read one line like readline.c; returns (control_char_or_0, line)."""
        c_out = self.console
        indent = auto_indent(text_before) if text_before else ""
        c_out.write(prompt + indent)
        line = indent
        escape = 0
        while True:
            c = c_out.getc()
            if escape == 1:
                escape = 2 if c in (0x5B, 0x4F) else 0
                continue
            if escape == 2:
                if not (0x30 <= c <= 0x39):
                    escape = 0
                continue
            if CTRL_A <= c <= CTRL_E and not line:
                return c, line
            if c == CTRL_C:
                return c, line
            if c == 13:
                c_out.write("\n")
                return 0, line
            if c == 27:
                escape = 1
            elif c in (8, 127):
                if line:
                    n = 1
                    if not line.strip(" ") and len(line) >= 4:
                        n = 4
                    line = line[:-n]
                    c_out.write(b"\x08" * n + b"\x1b[K")
            elif c >= 32:
                line += chr(c)
                c_out.write(bytes([c]))

    def friendly_repl(self):
        self.banner()
        while True:
            c, line = self.readline(">>> ")
            if c == CTRL_A:
                self.console.write("\n")
                self.mode = "raw"
                return
            if c == CTRL_B:
                self.console.write("\n")
                self.banner()
                continue
            if c == CTRL_C:
                self.console.write("\n")
                continue
            if c == CTRL_D:
                self.console.write("\n")
                raise SoftReset()
            if c == CTRL_E:
                source = self.paste_mode()
                if source is None:
                    continue
                self.guarded(lambda: exec(compile(source, "<stdin>", "exec"), self.main_globals))
                continue
            if not line:
                continue
            text = line
            cancelled = False
            while continue_with_input(text):
                text += "\n"
                c, more = self.readline("... ", text)
                if c == CTRL_C:
                    self.console.write("\n")
                    cancelled = True
                    break
                if c == CTRL_D:
                    break
                text += more
            if cancelled:
                continue
            self.guarded(lambda: exec(compile(text, "<stdin>", "single"), self.main_globals))

    def paste_mode(self):
        out = self.console
        out.write("\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== ")
        chars = bytearray()
        while True:
            c = out.getc()
            if c == CTRL_C:
                out.write("\n")
                return None
            if c == CTRL_D:
                out.write("\n")
                return bytes(chars)  # compiled as bytes: pasted text need not be UTF-8
            chars.append(c)
            out.write("\n=== " if c == 13 else bytes([c]))

    # --- raw REPL ---------------------------------------------------------------------------

    def raw_repl(self):
        out = self.console
        out.write("raw REPL; CTRL-B to exit\n")
        line = bytearray()
        out.write(">")
        while True:
            c = out.getc()
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E:
                    if self.raw_paste(line[1]) is not False:
                        out.write(">")
                    line = bytearray()
                    continue
                out.write("raw REPL; CTRL-B to exit\n")
                line = bytearray()
                out.write(">")
            elif c == CTRL_B:
                out.write("\n")
                self.mode = "friendly"
                return
            elif c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                out.write("OK")
                if not line:
                    out.write("\n")
                    raise SoftReset()
                self.raw_exec(bytes(line))
                line = bytearray()
                out.write(">")
            else:
                line.append(c)

    def raw_exec(self, source):
        self.guarded(lambda: exec(compile(source, "<stdin>", "exec"), self.main_globals), raw=True)

    def print_exception_framed(self, e):
        self.console.write(self.outcome_bytes(e, raw=True))

    def raw_paste(self, command):
        out = self.console
        # the host decides whether a raw-paste fault is injected ("refuse", "abort N" or "")
        fault = self.link.request(code.QUERY + " " + code.QUERY_PASTE).decode()
        if fault == code.PASTE_OLD:
            self.console.write("raw REPL; CTRL-B to exit\n>")
            return False
        if command != ord("A") or fault == code.PASTE_REFUSE:
            out.write(b"R\x00")
            return
        out.write(b"R\x01" + bytes([WINDOW & 0xFF, WINDOW >> 8, 1]))
        data = bytearray()
        remain = WINDOW
        abort = code.PASTE_ABORT + " "
        abort_after = int(fault[len(abort) :]) if fault.startswith(abort) else 0
        while True:
            c = out.getc()
            if c == CTRL_C or c == CTRL_D:
                out.write(b"\x04")
                if c == CTRL_C:
                    self.print_exception_framed(KeyboardInterrupt())
                    return
                break
            data.append(c)
            if abort_after and len(data) >= abort_after:
                out.write(b"\x04")
                while out.getc() not in (CTRL_C, CTRL_D):
                    pass
                self.print_exception_framed(MemoryError("memory allocation failed"))
                return
            remain -= 1
            if remain == 0:
                out.write(b"\x01")
                remain = WINDOW
        self.raw_exec(bytes(data))

    # --- main loop --------------------------------------------------------------------------

    def run(self):
        try:
            self.boot()
            self.run_boot_files()
            self.link.event(code.BOOTED)
            while True:
                try:
                    if self.mode == "raw":
                        self.raw_repl()
                    else:
                        self.friendly_repl()
                except KeyboardInterrupt:
                    # a Ctrl-C that reached the firmware between two executions: as a board
                    # that reads Ctrl-C at its prompt, start a fresh input line
                    if self.mode == "friendly":
                        self.console.write("\n")
        except SoftReset:
            self.link.event(code.SOFT_RESET + " " + self.mode)

