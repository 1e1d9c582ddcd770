"""The firmware manifest: which image each firmware id is, and how a board proves it runs it.

A pin is only useful if it is exact: the manifest names a local image (nothing is downloaded at
test time), its sha256 (so a corrupted or swapped file is refused before anything is written), and
the version string the board reports once it runs that image, with the expression that reads it
(``os.uname().version``, ``sys.version`` or ``sys.implementation._build``), so "is this board on the
pin?" is one eval on the board and one string comparison here.

Format (``firmware/manifest.toml``)::

    cache_dir = "~/.cache/mpy-hil/firmware"     # optional: where images that are not local are

    [firmware.rp2-pico-v1_24_1]
    platform = "rp2"
    image = "RPI_PICO-20241129-v1.24.1.uf2"     # relative to the manifest, else to cache_dir
    sha256 = "<64 hex digits>"
    version = "v1.24.1 on 2024-11-29"
    version_from = "os.uname().version"          # optional, this is the default
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import ConfigError, FlashError
from hil.rack._validate import InvalidField
from hil.rack.inventory import expect_platform

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The expressions a board can be asked for its version, each a key the manifest may name,
#: mapped to one self-contained expression to evaluate on the board: ``__import__`` leaves no
#: ``os``/``sys`` name behind in the REPL's namespace, which tests compare before and after.
VERSION_EXPRESSIONS = {
    "os.uname().version": "__import__('os').uname().version",
    "sys.version": "__import__('sys').version",
    "sys.implementation._build": "getattr(__import__('sys').implementation, '_build', '')",
}
VERSION_SOURCES = tuple(VERSION_EXPRESSIONS)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TOP_KEYS = frozenset({"cache_dir", "firmware"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FirmwareEntry:
    """One pinned firmware. Field names equal the manifest keys (plus where it came from)."""

    id: str
    platform: str
    image: str
    sha256: str
    version: str
    version_from: str = VERSION_SOURCES[0]
    #: The manifest file this entry was read from; relative image paths start at its folder.
    manifest: Path = field(default=Path("manifest.toml"), compare=False)
    cache_dir: Path | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """How errors name this entry: file and firmware id."""
        return f"{self.manifest}: firmware.{self.id}"

    def candidates(self) -> list[Path]:
        """The paths the image may be at, in the order they are tried."""
        image = Path(self.image).expanduser()
        if image.is_absolute():
            return [image]
        paths = [self.manifest.parent / image]
        if self.cache_dir is not None:
            paths.append(self.cache_dir / image)
        return paths

    def image_path(self) -> Path:
        """The image file; ``FlashError`` naming every place looked at when it is missing."""
        for path in self.candidates():
            if path.is_file():
                return path
        looked = ", ".join(str(p) for p in self.candidates())
        raise FlashError(f"firmware image not found (looked at: {looked})", where=self.where)

    @property
    def version_expr(self) -> str:
        """What to evaluate on the board to read the version this pin is compared with."""
        return VERSION_EXPRESSIONS[self.version_from]

    def matches(self, reported: str) -> bool:
        """Whether the version a board reported (by ``version_from``) is this pin."""
        return reported.strip() == self.version.strip()

    def check_reported(self, reported: str, *, board: str) -> None:
        """``FlashError`` unless the board's reported version is this pin (after flashing)."""
        if not self.matches(reported):
            raise FlashError(
                f"board reports {self.version_from} = {reported.strip()!r}, "
                f"pin {self.id} expects {self.version.strip()!r}",
                where=board,
            )


@dataclass(frozen=True)
class Manifest:
    """All pinned firmware of a project, keyed by firmware id."""

    path: Path
    firmware: Mapping[str, FirmwareEntry]

    def get(self, firmware_id: str, *, where: str = "") -> FirmwareEntry:
        """The entry for ``firmware_id``; ``ConfigError`` naming the asker when there is none."""
        try:
            return self.firmware[firmware_id]
        except KeyError:
            known = ", ".join(sorted(self.firmware)) or "none"
            raise ConfigError(
                f"firmware {firmware_id!r} is not in {self.path} (known: {known})",
                where=where or str(self.path),
            ) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file; every problem is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("firmware manifest not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read firmware manifest: {exc}", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", where=str(path)) from None
    return parse_manifest(data, path)


def parse_manifest(data: Mapping[str, Any], path: Path) -> Manifest:
    """Validate already-parsed TOML data; ``path`` is used for messages and relative images."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (allowed: cache_dir, firmware)", where=str(path)
        )
    cache_dir = None
    if "cache_dir" in data:
        if not isinstance(data["cache_dir"], str) or not data["cache_dir"]:
            raise ConfigError("must be a non-empty path string", where=f"{path}: cache_dir")
        cache_dir = path.parent / Path(data["cache_dir"]).expanduser()
    table = data.get("firmware", {})
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table of firmware ids", where=f"{path}: firmware")
    entries = {
        firmware_id: _entry(firmware_id, raw, path, cache_dir) for firmware_id, raw in table.items()
    }
    return Manifest(path=path, firmware=entries)


def _entry(firmware_id: str, raw: Any, path: Path, cache_dir: Path | None) -> FirmwareEntry:
    where = f"{path}: firmware.{firmware_id}"
    if not _ID.match(firmware_id):
        raise ConfigError(
            "firmware id must start with a letter or digit, then letters, digits or ._@+-",
            where=where,
        )
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", where=where)
    keys = ("platform", "image", "sha256", "version", "version_from")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (allowed: {', '.join(keys)})", where=where)
    for key in keys[:4]:
        if key not in raw:
            raise ConfigError(f"missing required key {key!r}", where=where)
    for key in keys:
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise ConfigError("must be a non-empty string", where=f"{where}.{key}")
    try:  # the same open list of platforms as the rack's (pyboard means stm32)
        raw = {**raw, "platform": expect_platform("platform", raw["platform"])}
    except InvalidField as error:
        raise ConfigError(error.problem, where=f"{where}.platform") from None
    sha256 = raw["sha256"].strip().lower()
    if not _SHA256.match(sha256):
        raise ConfigError("must be 64 hex digits", where=f"{where}.sha256")
    version_from = raw.get("version_from", VERSION_SOURCES[0])
    if version_from not in VERSION_SOURCES:
        raise ConfigError(
            f"must be one of {', '.join(VERSION_SOURCES)}", where=f"{where}.version_from"
        )
    return FirmwareEntry(
        id=firmware_id,
        platform=raw["platform"],
        image=raw["image"],
        sha256=sha256,
        version=raw["version"],
        version_from=version_from,
        manifest=path,
        cache_dir=cache_dir,
    )


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so a large image does not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_image(entry: FirmwareEntry) -> Path:
    """Return the image path if its sha256 is the pinned one; else refuse with ``FlashError``.

    Called before any flasher touches a board, so a wrong image never reaches flash.
    """
    path = entry.image_path()
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise FlashError(f"cannot read firmware image: {exc}", where=str(path)) from None
    if actual != entry.sha256:
        raise FlashError(
            f"refusing to flash {path}: sha256 is {actual}, manifest expects {entry.sha256}",
            where=entry.where,
        )
    return path
