"""The GLB check in real Blender: it knows what this Blender's importer reads,
and it stands before every import path (here: the in-process import that
background and command-line imports use)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType

import bpy
import pytest

from tests.core.test_glb_check import (POSITIONS, document, glb, meshopt_document, tga_header, with_views)


def test_the_extension_table_is_what_this_blenders_importer_reads(addon: ModuleType) -> None:
    from io_scene_gltf2.io.imp.gltf2_io_gltf import glTFImporter

    logger = logging.getLogger("glTFImporter")
    handlers = list(logger.handlers)
    try:
        managed = set(glTFImporter("", {"import_user_extensions": []}).extensions_managed)
    finally:  # the importer's log adds a handler each time it is made
        logger.handlers[:] = handlers
        logging.getLogger("glTFImporter_errors").handlers.clear()
    assert addon.core.glb_check.importer_extensions(bpy.app.version) == managed


def test_a_targa_texture_over_the_limit_never_reaches_the_importer(addon: ModuleType, tmp_path: Path) -> None:
    picture = tga_header(20000, 20000, rle=True) + bytes(64)  # 1.6 GB once decoded
    views, binary = with_views(POSITIONS, picture)
    path = tmp_path / "targa.glb"
    path.write_bytes(glb(document(bufferViews=views, buffers=[{"byteLength": len(binary)}],
                                  images=[{"bufferView": 1}]), binary))
    images = len(bpy.data.images)
    with pytest.raises(addon.core.errors.ImportFailed, match="image 0 is 20,000 x 20,000 pixels"):
        addon.scene.importer.run_gltf(path)
    assert len(bpy.data.images) == images


def test_meshopt_is_refused_or_imported_as_this_blender_can(addon: ModuleType, tmp_path: Path) -> None:
    doc, binary = meshopt_document()
    path = tmp_path / "meshopt.glb"
    path.write_bytes(glb(doc, binary))
    if "EXT_meshopt_compression" in addon.core.glb_check.importer_extensions(bpy.app.version):
        addon.scene.importer.check_result(path)
    else:
        with pytest.raises(addon.core.errors.BadResultFile, match="compressed with meshopt, which this version"):
            addon.scene.importer.check_result(path)
