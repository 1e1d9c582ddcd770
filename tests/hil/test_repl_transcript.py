"""Claims 1-4 once more, typed at the friendly REPL exactly as a person would."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.board(capabilities=["sd"])

SESSION = """
>>> import test_simple
>>> 'test_simple' in dir(), 'sdcard_helper' in dir()
(True, False)
>>> test_simple.sdcard_helper._mounted
True
>>> sdcard_helper._mounted
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
NameError: name 'sdcard_helper' isn't defined
>>> import sdcard_helper
>>> sdcard_helper._mounted
True
>>> sdcard_helper is test_simple.sdcard_helper
True
>>> id(sdcard_helper) == id(test_simple.sdcard_helper)
True
"""


def test_the_documented_repl_session(firmware) -> None:
    result = firmware.play(SESSION)
    result.check()
    assert result.passed == result.examples == 8
