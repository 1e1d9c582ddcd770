"""Claims 1-4 once more, typed at the friendly REPL exactly as a person would."""

from __future__ import annotations

from hil.errors import RemoteError

#: How MicroPython words a NameError: old firmware (1.9, as on the micro:bit) as CPython and the
#: users' document do, newer firmware shorter.
NOT_DEFINED = ("is not defined", "isn't defined")

SESSION = """
>>> import test_simple
>>> 'test_simple' in dir(), 'sdcard_helper' in dir()
(True, False)
>>> test_simple.sdcard_helper._mounted
True
>>> sdcard_helper._mounted
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
NameError: name 'sdcard_helper' {not_defined}
>>> import sdcard_helper
>>> sdcard_helper._mounted
True
>>> sdcard_helper is test_simple.sdcard_helper
True
>>> id(sdcard_helper) == id(test_simple.sdcard_helper)
True
"""


def name_error_wording(board) -> str:
    """The board's own words for an unbound name (one of ``NOT_DEFINED``)."""
    try:
        board.exec("hil_unbound_name")
    except RemoteError as error:
        assert error.type_name == "NameError", error
        wording = error.message.replace("name 'hil_unbound_name' ", "", 1)
        assert wording in NOT_DEFINED, f"unexpected NameError message: {error.message!r}"
        return wording
    raise AssertionError("an unbound name raised nothing")


def test_the_documented_repl_session(firmware) -> None:
    result = firmware.play(SESSION.format(not_defined=name_error_wording(firmware)))
    result.check()
    assert result.passed == result.examples == 8
