"""The rack: which boards exist (inventory), where they are (ports), who may use them (leases).

Layers, each in its own module and each usable alone:

* :mod:`hil.rack.inventory`: the rack file (TOML) as validated frozen dataclasses;
* :mod:`hil.rack.ports`: the port scheme, its resolution to an openable path/URL, USB discovery;
* :mod:`hil.rack.selector`: which boards a test can run on;
* :mod:`hil.rack.leases`: exclusive use of a board across processes, through OS file locks;
* :mod:`hil.rack.quarantine`: boards taken out for the rest of a run.

Nothing here opens a serial port or talks to a board; that is the board layer's job.
"""

from hil.rack.inventory import (
    KNOWN_PLATFORMS,
    PLATFORM_ALIASES,
    SD_DRIVERS,
    Board,
    Capabilities,
    DriverRef,
    Flasher,
    Rack,
    SdSlot,
    SpiPins,
    canonical_platform,
    load_rack,
    rack_from_data,
)
from hil.rack.leases import (
    Holder,
    Lease,
    LeaseManager,
    LockState,
    NoMatchingBoard,
    default_lock_dir,
)
from hil.rack.ports import (
    MICROPYTHON_USB_IDS,
    FoundPort,
    PortSpec,
    UsbId,
    auto_port,
    bench_board_id,
    find_micropython_ports,
    parse_port,
    port_driver,
    port_present,
    resolve_port,
    safe_board_id,
)
from hil.rack.quarantine import Quarantine, QuarantineRecord, prune_run_dirs, run_dir
from hil.rack.selector import Selector

__all__ = [
    "KNOWN_PLATFORMS",
    "MICROPYTHON_USB_IDS",
    "PLATFORM_ALIASES",
    "SD_DRIVERS",
    "Board",
    "Capabilities",
    "DriverRef",
    "Flasher",
    "FoundPort",
    "Holder",
    "Lease",
    "LeaseManager",
    "LockState",
    "NoMatchingBoard",
    "PortSpec",
    "Quarantine",
    "QuarantineRecord",
    "Rack",
    "SdSlot",
    "Selector",
    "SpiPins",
    "UsbId",
    "auto_port",
    "bench_board_id",
    "canonical_platform",
    "default_lock_dir",
    "find_micropython_ports",
    "load_rack",
    "parse_port",
    "port_driver",
    "port_present",
    "prune_run_dirs",
    "rack_from_data",
    "resolve_port",
    "run_dir",
    "safe_board_id",
]
