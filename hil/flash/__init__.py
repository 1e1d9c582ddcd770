"""Pinned firmware and the flashers that put it on boards.

``manifest`` says which image a firmware id is and how a board proves it runs it; ``base`` is the
one ``Flasher`` interface and the registry a rack entry picks from by name (esptool, uf2,
dfu-util, picotool, the virtual board's ``sim``, plus any flasher registered later);
``parallel`` flashes many boards at once; ``session`` brings one board onto its pin (session
start) and ``cli`` is ``hil flash``. Concrete flashers are imported only when a rack asks for
them, so importing this package never imports esptool.
"""

from hil.flash.base import (
    Deadline,
    Flasher,
    FlashTarget,
    ProgressFn,
    create_flasher,
    flasher_class,
    flasher_names,
    no_progress,
    parse_options,
    poll_until,
    register_flasher,
    wait_for_port,
)
from hil.flash.manifest import (
    VERSION_EXPRESSIONS,
    VERSION_SOURCES,
    FirmwareEntry,
    Manifest,
    load_manifest,
    parse_manifest,
    sha256_file,
    verify_image,
)
from hil.flash.parallel import FlashJob, FlashResult, exit_status, flash_boards, summary_table
from hil.flash.session import FlashOutcome, ensure_firmware

__all__ = [
    "VERSION_EXPRESSIONS",
    "VERSION_SOURCES",
    "Deadline",
    "FirmwareEntry",
    "FlashJob",
    "FlashOutcome",
    "FlashResult",
    "FlashTarget",
    "Flasher",
    "Manifest",
    "ProgressFn",
    "create_flasher",
    "ensure_firmware",
    "exit_status",
    "flash_boards",
    "flasher_class",
    "flasher_names",
    "load_manifest",
    "no_progress",
    "parse_manifest",
    "parse_options",
    "poll_until",
    "register_flasher",
    "sha256_file",
    "summary_table",
    "verify_image",
    "wait_for_port",
]
