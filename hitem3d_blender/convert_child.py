"""The headless converter: run by a separate Blender, never imported by the add-on.

    blender -b --factory-startup --python convert_child.py -- SPEC.json
    python -E convert_child.py SPEC.json          (Blender as the bpy module)

Reads the spec (``core.conversion.ConversionSpec``), imports the GLB with
Blender's glTF importer into an empty file, applies what does not depend on
the scene, writes the task's library entry and, last, a JSON result the
parent reads. Exit code 0 with a result means success; errors travel as kinds
from ``core.conversion.CHILD_ERRORS``, never as free text.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path
from types import ModuleType

PACKAGE = "hitem3d_converter"  # a private name: no clash with an installed add-on


def _load_package() -> ModuleType:
    """This add-on's package under a private name, so its modules import each
    other the way they do inside Blender (the child has no add-ons enabled)."""
    folder = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def _spec_path(argv: list[str]) -> Path:
    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if len(args) != 1:
        raise SystemExit(2)
    return Path(args[0])


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    _load_package()
    conversion = importlib.import_module(f"{PACKAGE}.core.conversion")
    spec_path = _spec_path(argv)
    try:
        spec = conversion.ConversionSpec.from_json(spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return 3  # no result file: the parent reports a converter that ended without a result
    conversion.start_watchdog(spec.memory_limit_bytes, spec.parent_pid)
    result_path = Path(spec.result)

    import bpy

    # Both Blender (--factory-startup) and the bpy module start with the
    # default scene: begin from an empty file, so only the model is written.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    importer = importlib.import_module(f"{PACKAGE}.importer")
    library_entry = importlib.import_module(f"{PACKAGE}.library_entry")
    errors = importlib.import_module(f"{PACKAGE}.core.errors")
    try:
        import_started = time.monotonic()
        objects = importer.run_gltf(Path(spec.glb))
        import_s = time.monotonic() - import_started
    except errors.ImportFailed as exc:
        kind = "no_objects" if "no objects" in str(exc) else "import_failed"
        conversion.write_result(result_path, {"error": kind})
        return 1
    try:
        library_entry.finish_objects(objects, spec)
        library_entry.write_entry(objects, spec)
    except (OSError, RuntimeError):
        logging.getLogger(PACKAGE).exception("Could not write the library entry")
        conversion.write_result(result_path, {"error": "save_failed"})
        return 1
    conversion.write_result(result_path, {
        "objects": [obj.name for obj in objects],
        "import_s": import_s,
        "seconds": time.monotonic() - started,
    })
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # NOTE: no interpreter teardown: Blender (as a module too) can crash there
    # after a glTF import, and the result is already written.
    import os

    os._exit(code)
