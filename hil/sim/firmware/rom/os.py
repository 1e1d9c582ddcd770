# os, as the virtual board's firmware extends it: the unix port's os plus uname().
from uos import *  # noqa: F403
from collections import namedtuple

_uname_result = namedtuple("uname_result", ("sysname", "nodename", "release", "version", "machine"))


def uname():
    b = _hil  # noqa: F821 - the firmware's Board, a builtin name set at boot
    return _uname_result(
        "hilsim",
        "hilsim",
        b.version[1:] if b.version.startswith("v") else b.version,
        "%s on %s" % (b.version, b.build_date),
        "%s with %s" % (b.name, b.mcu),
    )
