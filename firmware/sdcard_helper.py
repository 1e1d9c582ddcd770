# sdcard_helper: mounts the board's SD card once; the "mounted" flag is module state, shared by
# every importer because a module is executed once and cached in sys.modules.
#
# The driver comes from sd_config.py, which the test fixtures write for each board from its rack
# entry (no port is hard-coded here):
#   DRIVER = "machine.SDCard" (esp32, mimxrt, virtual), "pyb.SDCard" (stm32) or "sdcard-spi"
#   (micropython-lib's sdcard over SPI: rp2, samd); SLOT, SPI, PINS, MOUNT as that driver needs.
import os

try:
    import vfs
except ImportError:  # firmware older than v1.23 keeps mount() in os
    vfs = os

import config

_mounted = False


def _settings():
    import sd_config

    return sd_config


def _card(cfg):
    import machine

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


def _mounted_at(path):
    return any(point == path for _, point in vfs.mount()) if hasattr(vfs, "mount") else False


def mount():
    """Mount the card at config.SD_MOUNT_POINT; idempotent. Raises OSError when it cannot."""
    global _mounted
    if _mounted:
        return True
    cfg = _settings()
    point = config.SD_MOUNT_POINT
    if cfg.DRIVER == "pyb.SDCard":
        # stm32 firmware mounts a present card at /sd by itself, at boot and after soft resets
        if not _mounted_at(point):
            import pyb

            vfs.mount(pyb.SDCard(), point)
    else:
        vfs.mount(_card(cfg), point)
    _mounted = True
    return True


def unmount():
    """Unmount the card if this module mounted it."""
    global _mounted
    if _mounted:
        vfs.umount(config.SD_MOUNT_POINT)
        _mounted = False


def is_mounted():
    return _mounted
