"""The headless converter: run by a separate Blender, never imported by the add-on.

    blender -b --factory-startup --python convert_child.py -- SPEC.json
    python -E convert_child.py SPEC.json          (Blender as the bpy module)
    ... convert_child.py --wait MEMORY_LIMIT PARENT_PID   (then a spec's path on stdin)

Its first act is to arm its limits (``core.process_guard.guard``): it ends
with Blender, when its time is up and when it outgrows its memory.

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
    folder = Path(__file__).resolve().parents[1]  # the add-on's package: scene/ is one of its layers
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def _args(argv: list[str]) -> list[str]:
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def _prepare_blender() -> None:
    """An empty file (Blender and the bpy module both start with the default
    scene, and only the model is to be written), and the glTF importer's
    modules loaded, as its first use would."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    for name in ("io_scene_gltf2.blender.imp.blender_gltf", "io_scene_gltf2.blender.imp.gltf2_blender_gltf"):
        try:
            importlib.import_module(name)
            break
        except ImportError:
            continue
    for name in ("scene.importer", "scene.library_entry"):
        importlib.import_module(f"{PACKAGE}.{name}")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    _load_package()
    conversion = importlib.import_module(f"{PACKAGE}.core.conversion")
    process_guard = importlib.import_module(f"{PACKAGE}.core.process_guard")
    args = _args(argv)
    guard = None
    if len(args) == 3 and args[0] == "--wait":
        # Started ahead of need: guarded at once (its parent may be gone
        # already), then Blender loads, then it waits for the spec.
        guard = process_guard.guard(int(args[2]), memory_bytes=int(args[1]))
        _prepare_blender()
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # not needed after all, or Blender is gone (its end of the pipe closed)
        started = time.monotonic()
        spec_path = Path(line)
    elif len(args) == 1:
        spec_path = Path(args[0])
    else:
        return 2
    safe_files = importlib.import_module(f"{PACKAGE}.core.safe_files")
    try:
        # Never through a link, never a FIFO: the spec is a plain file of ours.
        spec = conversion.ConversionSpec.from_json(
            safe_files.read_bytes(spec_path, max_bytes=conversion.MAX_RESULT_BYTES).decode("utf-8"))
    except (OSError, ValueError, TypeError):
        return 3  # no result file: the parent reports a converter that ended without a result
    if guard is None:
        guard = process_guard.guard(spec.parent_pid)
        guard.limit(spec.memory_limit_bytes, spec.timeout_s)
        _prepare_blender()
    else:
        guard.limit(spec.memory_limit_bytes, spec.timeout_s)
    result_path = Path(spec.result)
    importer = importlib.import_module(f"{PACKAGE}.scene.importer")
    library_entry = importlib.import_module(f"{PACKAGE}.scene.library_entry")
    errors = importlib.import_module(f"{PACKAGE}.core.errors")
    try:
        # NOTE: checked here, not in Blender's main thread (a hostile file's
        # JSON can take it a second); the reason travels back as a message.
        importer.check_result(Path(spec.glb))
    except errors.BadResultFile as exc:
        conversion.write_result(result_path, {"error": conversion.REFUSED, "message": exc.message.to_dict()})
        return 1
    except OSError:
        conversion.write_result(result_path, {"error": "import_failed"})
        return 1
    try:
        import_started = time.monotonic()
        objects = importer.run_gltf(Path(spec.glb))
        import_s = time.monotonic() - import_started
    except errors.ImportFailed as exc:
        kind = "no_objects" if "no objects" in str(exc) else "import_failed"
        conversion.write_result(result_path, {"error": kind})
        return 1
    try:
        finish_started = time.monotonic()
        library_entry.finish_objects(objects, spec)
        write_started = time.monotonic()
        seal = library_entry.write_entry(objects, spec)
        written = time.monotonic()
    except (OSError, RuntimeError):
        logging.getLogger(PACKAGE).exception("Could not write the library entry")
        conversion.write_result(result_path, {"error": "save_failed"})
        return 1
    timings = {"import_s": import_s, "finish_s": write_started - finish_started, "write_s": written - write_started,
               "seconds": written - started}
    logging.getLogger(PACKAGE).info("Converted: %s", ", ".join(f"{k} {v:.3f}" for k, v in timings.items()))
    conversion.write_result(result_path, {"objects": [obj.name for obj in objects], "digest": seal.digest,
                                          "identity": seal.identity, **timings})
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # NOTE: no interpreter teardown: Blender (as a module too) can crash there
    # after a glTF import, and the result is already written.
    import os

    os._exit(code)
