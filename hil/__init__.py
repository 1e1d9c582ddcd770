"""mpy-hil: hardware-in-the-loop tests for MicroPython boards, on pytest."""

__version__ = "0.1.0"
