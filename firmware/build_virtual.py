"""Build the virtual board's pinned firmware image (``firmware/virtual/<id>.img``).

Why the image is committed rather than built at test time: a pin means "these exact bytes". A
board that ran an image built from today's tree would silently change when the board-side
support modules (``hil/sim/firmware/rom``) change; a committed image with its sha256 in
``manifest.toml`` changes only when someone rebuilds it on purpose, as with a real board's
release image. It is small (a header line plus a ROMFS of a few KB).

Usage (from the repository root)::

    python firmware/build_virtual.py           # (re)write the image; prints its manifest entry
    python firmware/build_virtual.py --check   # exit 1 unless image and manifest match this tree

After a rebuild, paste the printed sha256 into ``manifest.toml``. Bump ``VERSION`` whenever the
content changes, so that boards on the old image are seen as off the pin and get re-flashed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from a checkout: find the hil package

from hil.flash.manifest import load_manifest  # noqa: E402
from hil.sim.images import build_firmware  # noqa: E402

#: What the board reports: ``os.uname().version`` is ``f"{VERSION} on {DATE}"``.
VERSION = "v1.29.0-hil.2"
DATE = "2026-12-01"
FIRMWARE_ID = f"virtual-{VERSION}"
IMAGE = HERE / "virtual" / f"{FIRMWARE_ID}.img"
MANIFEST = HERE / "manifest.toml"


def build() -> bytes:
    """The image bytes: the virtual board's support modules, no frozen modules of ours (yet)."""
    return build_firmware(VERSION, DATE)


def check() -> list[str]:
    """What is wrong with the committed image and its manifest entry (nothing: empty list)."""
    problems = []
    expected = build()
    if not IMAGE.is_file():
        return [f"{IMAGE} is missing: run python firmware/build_virtual.py"]
    actual = IMAGE.read_bytes()
    if actual != expected:
        problems.append(f"{IMAGE} is not what this tree builds: rebuild it and bump VERSION")
    entry = load_manifest(MANIFEST).get(FIRMWARE_ID)
    digest = hashlib.sha256(actual).hexdigest()
    if entry.sha256 != digest:
        problems.append(f"{MANIFEST}: firmware.{FIRMWARE_ID}.sha256 should be {digest}")
    if entry.version != f"{VERSION} on {DATE}":
        problems.append(f"{MANIFEST}: firmware.{FIRMWARE_ID}.version should be {VERSION} on {DATE}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    data = build()
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    IMAGE.write_bytes(data)
    print(f"[firmware.{FIRMWARE_ID}]")
    print('platform = "unix"')
    print(f'image = "{IMAGE.relative_to(HERE).as_posix()}"')
    print(f'sha256 = "{hashlib.sha256(data).hexdigest()}"')
    print(f'version = "{VERSION} on {DATE}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
