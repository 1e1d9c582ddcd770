# The link between a virtual board's host process and its firmware: every message code, once.
#
# Why a file of its own in the firmware directory: the firmware (hilfw.py) runs inside
# MicroPython and cannot import the hil package, and the host (hil/sim/link.py) must not keep a
# second copy of the letters. Both import this module: the board from its own directory, the host
# as hil.sim.firmware.linkcodes. Plain constants only: it must run on the unix port unchanged.
#
# Wire format (text header lines ending in "\n", one optional binary payload):
#   board -> host, events (no answer):
#     EXECUTING            user code runs: the host turns a Ctrl-C from the port into SIGINT
#     IDLE                 user code ended
#     BOOTED               boot.py/main.py done, the REPL is at its prompt
#     SOFT_RESET <mode>    a soft reset (mode: raw|friendly); the interpreter exits next
#     HARD_RESET           machine.reset()
#     BOOTLOADER           machine.bootloader()
#   board -> host, requests (answered on the other pipe):
#     QUERY <what>         QUERY_PASTE: which raw-paste fault is injected (PASTE_* below, or "")
#     CARD <op> <slot> <block> <count>   an SD card request; CARD_WRITE carries count blocks
#   host -> board, answers:
#     "OK <n>\n" + n bytes, or "ERR <errno> <message>\n"

EXECUTING = "E"
IDLE = "I"
BOOTED = "B"
SOFT_RESET = "S"
HARD_RESET = "H"
BOOTLOADER = "L"
QUERY = "Q"
CARD = "C"

QUERY_PASTE = "paste"

# Card operations. These letters are also frozen into rom/machine.py of committed firmware
# images (it calls _hil.card("R", ...)), so they may never change.
CARD_INIT = "I"
CARD_READ = "R"
CARD_WRITE = "W"
CARD_BLOCK = 512

# Answers to QUERY_PASTE: "" (none), PASTE_REFUSE (R\x00), PASTE_OLD (firmware older than
# raw-paste), or PASTE_ABORT + " <n>" (abort after n bytes).
PASTE_REFUSE = "refuse"
PASTE_OLD = "old"
PASTE_ABORT = "abort"

REPLY_OK = "OK"
REPLY_ERR = "ERR"
