"""The Hitem3D asset library's plain parts: catalogs by date, metadata, cover sizes."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

from hitem3d_blender.core import asset_library
from hitem3d_blender.core.images import image_size
from tests.support.glb_factory import cached_webp

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"
WHEN = datetime(2026, 11, 30, 10, 45, tzinfo=timezone.utc)


def catalog_lines(library: Path) -> list[str]:
    text = (library / asset_library.CATALOG_FILE).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#") and line != "VERSION 1"]


def test_catalogs_are_a_month_and_its_days(tmp_path: Path) -> None:
    day = asset_library.ensure_catalog(tmp_path, WHEN)
    month = asset_library.catalog_id("2026-11")
    assert catalog_lines(tmp_path) == [f"{month}:2026-11:Hitem3D-2026-11",
                                       f"{day}:2026-11/2026-11-30:Hitem3D-2026-11-2026-11-30"]
    assert "VERSION 1" in (tmp_path / asset_library.CATALOG_FILE).read_text()


def test_a_date_is_added_once_and_other_catalogs_stay(tmp_path: Path) -> None:
    (tmp_path / asset_library.CATALOG_FILE).write_text("VERSION 1\n\nabc:Props/Chairs:Props-Chairs")
    asset_library.ensure_catalog(tmp_path, WHEN)
    asset_library.ensure_catalog(tmp_path, WHEN)
    lines = catalog_lines(tmp_path)
    assert lines[0] == "abc:Props/Chairs:Props-Chairs" and len(lines) == 3


def test_the_same_date_is_the_same_catalog_on_every_computer() -> None:
    assert asset_library.catalog_id("2026-11/2026-11-30") == asset_library.catalog_id("2026-11/2026-11-30")
    assert asset_library.catalog_id("2026-11/2026-11-30") != asset_library.catalog_id("2026-11/2026-12-01")


def test_asset_metadata_names_task_model_date_and_source_image() -> None:
    info = asset_library.asset_info(task_id=TASK_ID, model="hitem3dv2.0", when=WHEN,
                                    source_image="/home/a/photos/chair.png")
    assert info.properties == {"hitem3d_task_id": TASK_ID, "hitem3d_date": "2026-11-30T10:45:00Z",
                               "hitem3d_model": "hitem3dv2.0", "hitem3d_source_image": "chair.png"}
    assert info.tags == ("Hitem3D", "2026-11-30", "hitem3dv2.0")
    assert info.description.splitlines()[0] == f"Hitem3D task {TASK_ID}"
    assert info.catalog_id == asset_library.catalog_id("2026-11/2026-11-30")


def test_a_task_imported_by_id_has_no_model_or_image_in_its_metadata() -> None:
    info = asset_library.asset_info(task_id=TASK_ID, model="", when=WHEN, source_image="")
    assert set(info.properties) == {"hitem3d_task_id", "hitem3d_date"}


def _png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_image_sizes_come_from_the_header(tmp_path: Path) -> None:
    png = tmp_path / "huge.png"
    png.write_bytes(_png(30000, 20000))
    assert image_size(png) == (30000, 20000)
    assert image_size(cached_webp(64)) == (64, 64)
    jpeg = tmp_path / "a.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08\x01\x20\x02\x40\x03" + b"\0" * 20)
    assert image_size(jpeg) == (576, 288)
    (tmp_path / "junk").write_bytes(b"<html>")
    assert image_size(tmp_path / "junk") is None
    assert image_size(tmp_path / "missing.png") is None
