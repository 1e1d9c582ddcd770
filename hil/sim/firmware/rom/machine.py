# machine, as the virtual board's firmware extends it: the unix port's umachine plus what a
# board has (reset, unique_id, bootloader, an ESP32-style SDCard). Lives in the board's ROMFS.
from umachine import *  # noqa: F403
# _hil: the firmware's Board object, a builtin name set at boot (see hilfw.py)
_board = _hil  # noqa: F821

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset():
    _board.hard_reset()


def soft_reset():
    raise SystemExit


def bootloader(*_args):
    _board.bootloader()


def unique_id():
    return _board.uid


def reset_cause():
    return _board.reset_cause


class SDCard:
    """An SD card slot as on an ESP32: the card behind it lives on the host, in the board's slot.

    Construction succeeds without a card (as on an ESP32); talking to an absent card fails with
    OSError(16) when it is mounted, and with OSError(5) when it is pulled while mounted.
    """

    def __init__(self, slot=None, width=1, cd=None, wp=None, sck=None, miso=None, mosi=None,
                 cs=None, freq=20000000):
        # the default slot is the one this board's card is wired to (an ESP32 board's is 1)
        self.slot = _board.card_slot if slot is None else slot

    def readblocks(self, block, buf, offset=0):
        buf[:] = _board.card("R", self.slot, block, len(buf) // 512)

    def writeblocks(self, block, buf, offset=None):
        _board.card("W", self.slot, block, len(buf) // 512, bytes(buf))

    def ioctl(self, op, arg):
        if op == 1:  # init
            _board.card("I", self.slot)
            return 0
        if op == 4:  # block count
            return int(_board.card("I", self.slot))
        if op == 5:  # block size
            return 512
        return 0

    def info(self):
        return (int(_board.card("I", self.slot)) * 512, 512)
