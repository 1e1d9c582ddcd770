"""The firmware manifest: validated on load, one-line errors, images refused on a wrong sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hil.errors import ConfigError, FlashError
from hil.flash.manifest import (
    FirmwareEntry,
    load_manifest,
    sha256_file,
    verify_image,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE = b"\x55" * 4096 + b"micropython"
GOOD_SHA = hashlib.sha256(IMAGE).hexdigest()


def write_manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "manifest.toml"
    path.write_text(body, encoding="utf-8")
    return path


def entry_toml(firmware_id: str = "pico", **overrides: str) -> str:
    fields = {
        "platform": "rp2",
        "image": "images/pico.uf2",
        "sha256": GOOD_SHA,
        "version": "v1.24.1 on 2024-11-29",
    }
    fields.update(overrides)
    lines = [f"[firmware.{firmware_id}]"]
    lines += [f'{key} = "{value}"' for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def test_valid_manifest_loads_entries_with_defaults(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, entry_toml() + entry_toml("esp", platform="esp32"))
    manifest = load_manifest(path)
    assert sorted(manifest.firmware) == ["esp", "pico"]
    pico = manifest.get("pico")
    assert pico.platform == "rp2"
    assert pico.sha256 == GOOD_SHA
    assert pico.version_from == "os.uname().version"
    assert pico.candidates() == [tmp_path / "images" / "pico.uf2"]


def test_sha256_is_normalised_to_lower_case(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, entry_toml(sha256=GOOD_SHA.upper()))
    assert load_manifest(path).get("pico").sha256 == GOOD_SHA


def test_version_from_accepts_each_documented_source(tmp_path: Path) -> None:
    body = entry_toml("a", version_from="sys.version") + entry_toml(
        "b", version_from="sys.implementation._build"
    )
    manifest = load_manifest(write_manifest(tmp_path, body))
    assert manifest.get("a").version_from == "sys.version"
    assert manifest.get("b").version_from == "sys.implementation._build"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (entry_toml(sha256="abc"), "firmware.pico.sha256", "64 hex digits"),
        (entry_toml(platform="esp 23"), "firmware.pico.platform", "'esp 23' is not a platform"),
        (entry_toml(version_from="os.uname()"), "firmware.pico.version_from", "must be one of"),
        (entry_toml(version=""), "firmware.pico.version", "non-empty string"),
        (entry_toml(imgae="x.uf2"), "firmware.pico", "unknown key 'imgae'"),
        ('[firmware.pico]\nplatform = "rp2"\n', "firmware.pico", "missing required key 'image'"),
        (
            '[firmware.pico]\nplatform = 3\nimage = "a"\nsha256 = "b"\nversion = "c"\n',
            "firmware.pico.platform",
            "non-empty string",
        ),
        ("firmware = 3\n", "firmware", "table of firmware ids"),
        ("cache = 'x'\n", "manifest.toml", "unknown key 'cache'"),
        ("[firmware.'bad id']\n", "firmware.bad id", "firmware id must start"),
    ],
)
def test_bad_manifest_is_one_line_error_naming_file_id_and_field(
    tmp_path: Path, body: str, field: str, words: str
) -> None:
    path = write_manifest(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert field in message
    assert words in message


def test_invalid_toml_names_the_file_and_position(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "[firmware.pico\nplatform = 'rp2'\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_manifest(path)
    assert str(path) in str(info.value)
    assert "line 1" in str(info.value)


def test_missing_manifest_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="firmware manifest not found"):
        load_manifest(tmp_path / "nope.toml")


def test_unknown_firmware_id_lists_the_known_ones(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, entry_toml()))
    with pytest.raises(ConfigError, match=r"'esp' is not in .*known: pico") as info:
        manifest.get("esp", where="rack.toml: boards.b1.firmware")
    assert "rack.toml: boards.b1.firmware" in str(info.value)


def test_verify_image_returns_the_path_when_sha256_matches(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, entry_toml()))
    image = tmp_path / "images" / "pico.uf2"
    image.parent.mkdir()
    image.write_bytes(IMAGE)
    assert verify_image(manifest.get("pico")) == image


def test_verify_image_refuses_a_wrong_image_with_expected_actual_and_file(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, entry_toml()))
    image = tmp_path / "images" / "pico.uf2"
    image.parent.mkdir()
    image.write_bytes(IMAGE + b"tampered")
    actual = hashlib.sha256(IMAGE + b"tampered").hexdigest()
    with pytest.raises(FlashError) as info:
        verify_image(manifest.get("pico"))
    message = str(info.value)
    assert "refusing to flash" in message
    assert GOOD_SHA in message and actual in message
    assert str(image) in message
    assert "firmware.pico" in message
    assert "\n" not in message


def test_verify_image_names_every_place_it_looked_when_missing(tmp_path: Path) -> None:
    body = 'cache_dir = "cache"\n' + entry_toml()
    manifest = load_manifest(write_manifest(tmp_path, body))
    with pytest.raises(FlashError, match="firmware image not found") as info:
        verify_image(manifest.get("pico"))
    assert str(tmp_path / "images" / "pico.uf2") in str(info.value)
    assert str(tmp_path / "cache" / "images" / "pico.uf2") in str(info.value)


def test_image_is_found_in_the_cache_dir_when_not_next_to_the_manifest(tmp_path: Path) -> None:
    body = 'cache_dir = "cache"\n' + entry_toml()
    manifest = load_manifest(write_manifest(tmp_path, body))
    cached = tmp_path / "cache" / "images" / "pico.uf2"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(IMAGE)
    assert verify_image(manifest.get("pico")) == cached


def test_absolute_image_path_is_used_as_is(tmp_path: Path) -> None:
    image = tmp_path / "elsewhere.bin"
    image.write_bytes(IMAGE)
    manifest = load_manifest(write_manifest(tmp_path, entry_toml(image=str(image))))
    assert manifest.get("pico").candidates() == [image]


def test_sha256_file_matches_hashlib_on_a_multi_chunk_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # > 1 MiB: more than one read chunk
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_matches_compares_the_reported_version_exactly() -> None:
    entry = FirmwareEntry(
        id="x", platform="rp2", image="x.uf2", sha256=GOOD_SHA, version="v1.24.1 on 2024-11-29"
    )
    assert entry.matches("v1.24.1 on 2024-11-29\r\n")
    assert not entry.matches("v1.24.0 on 2024-10-01")
    assert not entry.matches("v1.24.1")


def test_the_example_manifest_of_the_repository_is_valid() -> None:
    manifest = load_manifest(REPO / "firmware" / "manifest.toml")
    assert manifest.firmware, "the example manifest pins no firmware"
    for entry in manifest.firmware.values():
        assert entry.manifest == REPO / "firmware" / "manifest.toml"


def test_version_expressions_read_each_source_without_binding_names() -> None:
    """Evaluated here on CPython: the same expressions must read the named field."""
    import os
    import sys

    entry = FirmwareEntry(id="x", platform="unix", image="x", sha256=GOOD_SHA, version="v")
    expected = {
        "os.uname().version": os.uname().version,
        "sys.version": sys.version,
        "sys.implementation._build": getattr(sys.implementation, "_build", ""),
    }
    for source, value in expected.items():
        pinned = FirmwareEntry(**{**entry.__dict__, "version_from": source})
        namespace: dict[str, object] = {}
        assert eval(pinned.version_expr, namespace) == value
        assert set(namespace) <= {"__builtins__"}


def test_check_reported_names_board_both_versions_and_the_source() -> None:
    entry = FirmwareEntry(
        id="pico", platform="rp2", image="x", sha256=GOOD_SHA, version="v1.24.1 on 2024-11-29"
    )
    entry.check_reported("v1.24.1 on 2024-11-29", board="pico-1")
    with pytest.raises(FlashError) as info:
        entry.check_reported("v1.23.0 on 2024-06-02", board="pico-1")
    assert str(info.value).startswith(
        "pico-1: board reports os.uname().version = 'v1.23.0 on 2024-06-02', "
        "pin pico expects 'v1.24.1 on 2024-11-29'"
    )
