"""What the users' import document claims, proven on every board.

A module is executed once and cached (in ``sys.modules``, where the firmware has it): every
import returns that object, so module state (sdcard_helper's "mounted" flag) is a singleton; and
a name bound inside an imported module is not bound in the REPL's namespace until the REPL
imports it too. None of this needs a card: on a board without one, sdcard_helper mounts a
stand-in (see fixtures/firmware.py), and the report says which.
"""

from __future__ import annotations

import pytest

from fixtures.facts import skip_unless
from hil.errors import RemoteError


def names(firmware, namespace: str = "") -> set[str]:
    """dir() of the REPL (``namespace`` empty) or of a module, without touching the REPL's."""
    return set(firmware.eval(f"dir({namespace})"))


def test_import_binds_only_the_imported_module(firmware) -> None:
    before = names(firmware)
    firmware.exec("import test_simple")
    assert names(firmware) - before == {"test_simple"}
    assert "sdcard_helper" not in names(firmware)


def test_later_import_is_the_same_object_and_does_not_run_again(firmware) -> None:
    firmware.exec("import test_simple")
    firmware.exec("import sdcard_helper")
    # Were the module executed again, its body would have reset _mounted to False.
    assert firmware.eval("sdcard_helper._mounted") is True
    assert firmware.eval("sdcard_helper is test_simple.sdcard_helper") is True
    ids = firmware.eval("(id(sdcard_helper), id(test_simple.sdcard_helper))")
    assert ids[0] == ids[1]


def test_the_one_module_object_is_the_one_in_sys_modules(firmware, facts, hil_board_entry) -> None:
    skip_unless(facts, hil_board_entry.id, "sys.modules")
    firmware.exec("import sys, test_simple, sdcard_helper")
    assert firmware.eval("'sdcard_helper' in sys.modules") is True
    assert firmware.eval("sdcard_helper is sys.modules['sdcard_helper']") is True
    ids = firmware.eval(
        "(id(sdcard_helper), id(test_simple.sdcard_helper), id(sys.modules['sdcard_helper']))"
    )
    assert len(set(ids)) == 1


def test_mounted_flag_is_true_through_both_names(firmware) -> None:
    firmware.exec("import test_simple")
    assert firmware.eval("test_simple.sdcard_helper._mounted") is True
    assert firmware.eval("test_simple.sdcard_helper.is_mounted()") is True
    firmware.exec("import sdcard_helper")
    assert firmware.eval("sdcard_helper._mounted") is True
    assert firmware.eval("sdcard_helper.is_mounted()") is True


def test_bare_name_is_a_name_error_until_imported(firmware) -> None:
    firmware.exec("import test_simple")
    with pytest.raises(RemoteError) as error:
        firmware.exec("sdcard_helper._mounted")
    assert error.value.type_name == "NameError"
    assert "sdcard_helper" in error.value.message
    firmware.exec("import sdcard_helper")
    assert firmware.eval("sdcard_helper._mounted") is True


def test_namespaces_are_separate(firmware) -> None:
    before = names(firmware)
    firmware.exec("import test_simple")
    assert {"sdcard_helper", "os", "count"} <= names(firmware, "test_simple")
    assert {"_mounted", "mount", "is_mounted"} <= names(firmware, "test_simple.sdcard_helper")
    assert "count" not in names(firmware, "test_simple.sdcard_helper")
    assert names(firmware) - before == {"test_simple"}  # the REPL holds only what it imported
    firmware.exec("import sdcard_helper")
    assert names(firmware) - before == {"test_simple", "sdcard_helper"}


def test_config_is_one_object_for_all_importers(firmware) -> None:
    firmware.exec("import config, test_simple")  # test_simple's mount() imports config too
    assert firmware.eval("config is test_simple.sdcard_helper.config") is True
    firmware.exec("config.LOG_LEVEL = 'debug'")
    assert firmware.eval("test_simple.sdcard_helper.config.LOG_LEVEL") == "debug"
    firmware.exec("test_simple.sdcard_helper.config.RETRIES = 7")
    assert firmware.eval("config.RETRIES") == 7


def test_second_import_does_not_execute_again(firmware) -> None:
    first = firmware.exec("import expensive_module")
    second = firmware.exec("import expensive_module")
    assert first.count("Loading expensive module...") == 1
    assert second == ""
    assert firmware.eval("expensive_module.executions") == 1
    assert firmware.eval("open('expensive_module.runs').read()") == "1"


def test_soft_reset_clears_module_state(firmware) -> None:
    firmware.exec("import test_simple")
    assert firmware.eval("test_simple.sdcard_helper._mounted") is True
    firmware.soft_reset()
    assert "test_simple" not in names(firmware)
    # a fresh import runs the module's body again: the flag is False, nothing was kept
    assert firmware.eval("__import__('sdcard_helper')._mounted") is False


def test_soft_reset_empties_sys_modules(firmware, facts, hil_board_entry) -> None:
    skip_unless(facts, hil_board_entry.id, "sys.modules")
    firmware.exec("import test_simple, expensive_module")
    firmware.soft_reset()
    # (a port's frozen _boot.py may leave its own modules there, e.g. flashbdev on an ESP32)
    loaded = set(firmware.eval("list(__import__('sys').modules)"))
    assert loaded.isdisjoint({"test_simple", "sdcard_helper", "config", "expensive_module"})
