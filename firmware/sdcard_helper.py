# sdcard_helper: mounts the board's SD card once; the "mounted" flag is module state, shared by
# every importer because a module's body runs once and the module object is cached.
#
# What it mounts comes from sd_config.py, which the test fixtures write for each board (no port
# is hard-coded here):
#   DRIVER = "machine.SDCard" (esp32, mimxrt, virtual), "pyb.SDCard" (stm32) or "sdcard-spi"
#   (micropython-lib's sdcard over SPI: rp2, samd); SLOT, SPI, PINS as that driver needs.
#   DRIVER = None: the board has no card. A stand-in takes its place, so that the import claims
#   hold on every board: a RAM disk, formatted at the first mount, where the firmware can mount
#   one; else the flag alone (nothing is mounted).
# BACKEND says which: "card", "ram" or "state", from the first mount() on. Runs on MicroPython
# 1.9 too (no f-strings, no vfs module).
import os

try:
    import vfs
except ImportError:  # firmware older than v1.23 keeps mount() and the Vfs classes in os
    vfs = os

_mounted = False
BACKEND = None
_ram = None  # the stand-in's RAM disk: made at the first mount, kept across remounts


def _backend():
    if sd_config.DRIVER:
        return "card"
    if hasattr(vfs, "mount") and (hasattr(vfs, "VfsFat") or hasattr(vfs, "VfsLfs2")):
        return "ram"
    return "state"


class RamDisk:
    """A block device in RAM (the block protocol of vfs: FAT and LittleFS both use it)."""

    def __init__(self, blocks, size=512):
        self.size = size
        self.data = bytearray(blocks * size)

    def readblocks(self, n, buf, offset=0):
        start = n * self.size + offset
        buf[:] = memoryview(self.data)[start : start + len(buf)]

    def writeblocks(self, n, buf, offset=0):
        start = n * self.size + offset
        self.data[start : start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.data) // self.size
        if op == 5:  # block size
            return self.size
        if op == 6:  # erase a block (LittleFS): nothing to do in RAM
            return 0
        return None


def _ram_volume():
    global _ram
    fs = getattr(vfs, "VfsFat", None) or vfs.VfsLfs2  # FAT first: what a card holds
    if _ram is None:
        _ram = RamDisk(64)  # 32 kB: room for a few small files
        fs.mkfs(_ram)
    return fs(_ram)


def _card():
    import machine

    cfg = sd_config
    if cfg.DRIVER == "machine.SDCard":
        kwargs = {} if cfg.SLOT is None else {"slot": cfg.SLOT}
        for name in ("sck", "mosi", "miso", "cs"):
            if cfg.PINS.get(name) is not None:
                kwargs[name] = machine.Pin(cfg.PINS[name])
        return machine.SDCard(**kwargs)
    if cfg.DRIVER == "sdcard-spi":
        import sdcard  # micropython-lib

        spi = machine.SPI(
            cfg.SPI,
            sck=machine.Pin(cfg.PINS["sck"]),
            mosi=machine.Pin(cfg.PINS["mosi"]),
            miso=machine.Pin(cfg.PINS["miso"]),
        )
        return sdcard.SDCard(spi, machine.Pin(cfg.PINS["cs"], machine.Pin.OUT))
    raise ValueError("unknown SD driver " + repr(cfg.DRIVER))


def mount():
    """Mount the card (or its stand-in) at config.SD_MOUNT_POINT; idempotent.
    Raises OSError when it cannot."""
    global _mounted, config, sd_config, BACKEND
    if _mounted:
        return True
    # Imported here, not at the top: a micro:bit (MicroPython 1.9) runs out of stack importing
    # modules from files three deep (REPL, test_simple, this module, config), even one more
    # function call deep.
    import config
    import sd_config

    BACKEND = _backend()
    point = config.SD_MOUNT_POINT
    if BACKEND == "ram":
        try:
            volume = _ram_volume()
        except MemoryError:  # no room for a RAM disk on this board: the flag alone
            BACKEND = "state"
        else:
            vfs.mount(volume, point)
    elif sd_config.DRIVER == "pyb.SDCard":
        # stm32 firmware mounts a present card at /sd by itself, at boot and after soft resets
        if point[1:] not in os.listdir("/"):
            import pyb

            vfs.mount(pyb.SDCard(), point)
    elif BACKEND == "card":
        vfs.mount(_card(), point)
    _mounted = True
    return True


def unmount():
    """Unmount the card (or its stand-in) if this module mounted it."""
    global _mounted
    if _mounted:
        if BACKEND != "state":
            vfs.umount(config.SD_MOUNT_POINT)
        _mounted = False


def is_mounted():
    return _mounted
