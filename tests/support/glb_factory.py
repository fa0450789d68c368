"""Test assets: a hand-built minimal GLB, and real GLB/WebP files made by Blender.

`minimal_glb_bytes` needs nothing but the standard library.  `make_glb` and
`make_webp` run Blender's own exporter in a subprocess (`sys.executable` must be
a Python with the `bpy` module), so the files are what a real Blender writes and
the test process never has its bpy state touched.  The `cached_*` helpers make
each asset once per bpy version.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A  # "JSON" little-endian
_CHUNK_BIN = 0x004E4942  # "BIN\0" little-endian


def minimal_glb_bytes() -> bytes:
    """A valid GLB 2.0 holding one triangle (JSON chunk + BIN chunk), built by hand."""
    positions = struct.pack("<9f", 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    document = {
        "asset": {"version": "2.0", "generator": "hitem3d-blender tests"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "Hitem3D_Sample"}],
        "meshes": [{"name": "Hitem3D_Sample", "primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": len(positions)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions), "target": 34962}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,  # FLOAT
                "count": 3,
                "type": "VEC3",
                "min": [0.0, 0.0, 0.0],
                "max": [1.0, 1.0, 0.0],
            }
        ],
    }
    json_chunk = json.dumps(document, separators=(",", ":")).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)  # the spec pads JSON with spaces
    bin_chunk = positions + b"\0" * (-len(positions) % 4)  # and BIN with zeros
    body = (
        struct.pack("<II", len(json_chunk), _CHUNK_JSON)
        + json_chunk
        + struct.pack("<II", len(bin_chunk), _CHUNK_BIN)
        + bin_chunk
    )
    return _GLB_MAGIC + struct.pack("<II", 2, 12 + len(body)) + body


# Shared by every asset script run in Blender (here and in benchmarks/assets.py).
# It runs inside `python -c`; parameters arrive as JSON in sys.argv[1].
BLENDER_SCRIPT_HEAD = r"""
import json, os, sys
import bpy
import numpy as np

p = json.loads(sys.argv[1])
bpy.ops.wm.read_factory_settings(use_empty=True)

def export_glb(out):
    # Exporter options differ between Blender versions: pass the ones this one has.
    available = bpy.ops.export_scene.gltf.get_rna_type().properties.keys()
    wanted = {"export_format": "GLB", "use_selection": False, "export_apply": True,
              "export_draco_mesh_compression_enable": False,
              "export_image_format": p.get("image_format", "AUTO")}
    options = {k: v for k, v in wanted.items() if k in available}
    result = bpy.ops.export_scene.gltf(filepath=out, **options)
    if "FINISHED" not in result:
        sys.exit("glTF export returned %r" % (result,))

def leave(out):
    if not os.path.exists(out):
        sys.exit("Blender did not write " + out)
    # bpy 4.2 as a module segfaults during interpreter teardown after a glTF
    # export; the work is done and on disk, so leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
"""

_BLENDER_SCRIPT = BLENDER_SCRIPT_HEAD + r"""
def checker_image(name, size):
    image = bpy.data.images.new(name, size, size, alpha=False)
    cells = max(1, size // 8)
    yy, xx = np.mgrid[0:size, 0:size]
    odd = ((xx // cells + yy // cells) % 2).astype(np.float32)
    rgba = np.stack([0.9 * odd + 0.1, 0.3 + 0.0 * odd, 1.0 - 0.8 * odd, np.ones_like(odd)], axis=-1)
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image

if p["kind"] == "webp":
    image = checker_image("Hitem3D_Cover", p["size"])
    image.filepath_raw = p["out"]
    image.file_format = "WEBP"
    image.save()
else:
    for i in range(p["objects"]):
        name = "Hitem3D_Sample" if i == 0 else "Hitem3D_Sample_%d" % (i + 1)
        bpy.ops.mesh.primitive_monkey_add(location=(3.0 * i, 0.0, 0.0))
        obj = bpy.context.active_object
        obj.name = obj.data.name = name
        if p["subdivisions"] > 0:
            modifier = obj.modifiers.new("Subdivision", "SUBSURF")
            modifier.levels = modifier.render_levels = p["subdivisions"]
            bpy.ops.object.modifier_apply(modifier=modifier.name)
        material = bpy.data.materials.new(name + "_Material")
        if getattr(material, "node_tree", None) is None:  # bpy < 5.0 creates materials without nodes
            material.use_nodes = True
        nodes, links = material.node_tree.nodes, material.node_tree.links
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        texture = nodes.new("ShaderNodeTexImage")
        texture.image = checker_image(name + "_BaseColor", p["texture_size"])
        links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
        obj.data.materials.append(material)
    export_glb(p["out"])
leave(p["out"])
"""


def run_blender_script(script: str, params: dict[str, Any], dest: Path, *, timeout_s: float = 600) -> Path:
    """Run ``script`` (which starts with ``BLENDER_SCRIPT_HEAD``) in a fresh
    Python with bpy and its own user folder. It gets ``params`` plus ``out``
    (a temporary name) and ``workdir`` (a scratch folder); the result becomes
    ``dest`` only once complete, so a cache never holds half a file."""
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: the glTF exporter appends ".glb" to names that lack it.
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp{dest.suffix}")
    with tempfile.TemporaryDirectory(prefix="hitem3d-blender-user-") as workdir:
        # Never touch the real profile or cache.
        env = dict(os.environ, BLENDER_USER_RESOURCES=workdir, XDG_CACHE_HOME=workdir)
        result = subprocess.run(
            [sys.executable, "-c", script, json.dumps({**params, "out": str(tmp), "workdir": workdir})],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if result.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(
            f"Blender subprocess failed (exit {result.returncode}) making {dest.name}:\n"
            f"{result.stderr[-4000:]}\n--- stdout (tail) ---\n{result.stdout[-2000:]}"
        )
    os.replace(tmp, dest)
    return dest


def make_glb(dest: Path, *, objects: int = 1, subdivisions: int = 2, texture_size: int = 64,
             image_format: str = "AUTO") -> Path:
    """A textured GLB exported by Blender: objects Hitem3D_Sample, Hitem3D_Sample_2, ...
    ``image_format`` is the exporter's: "AUTO" (PNG here) or "WEBP" (WebP only, no fallback)."""
    params = {"kind": "glb", "objects": objects, "subdivisions": subdivisions, "texture_size": texture_size,
              "image_format": image_format}
    return run_blender_script(_BLENDER_SCRIPT, params, dest)


def make_webp(dest: Path, size: int = 64) -> Path:
    """A size x size WebP image saved by Blender."""
    return run_blender_script(_BLENDER_SCRIPT, {"kind": "webp", "size": size}, dest)


# ---- cache --------------------------------------------------------------------------


def cache_dir() -> Path:
    configured = os.environ.get("HITEM3D_TEST_CACHE")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / ".cache" / "test-assets"


@lru_cache(maxsize=1)
def bpy_version() -> str:
    """The bpy version of sys.executable, without importing bpy into this process."""
    try:
        return metadata.version("bpy")
    except metadata.PackageNotFoundError:  # a bpy not installed as a distribution
        probe = "import bpy; print(bpy.app.version_string)"
        output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        return output.strip().split()[0]


def cached(path_builder: Callable[..., Path], suffix: str) -> Callable[..., Path]:
    """Wrap builder(dest, **kwargs) so each (builder, kwargs, bpy version) is made once."""

    def build(**kwargs: Any) -> Path:
        key = hashlib.sha256(json.dumps(kwargs, sort_keys=True).encode()).hexdigest()[:12]
        dest = cache_dir() / f"{path_builder.__name__}-bpy{bpy_version()}-{key}{suffix}"
        return dest if dest.is_file() else path_builder(dest, **kwargs)

    build.__name__ = f"cached_{path_builder.__name__}"
    return build


_cached_glb = cached(make_glb, ".glb")
_cached_webp = cached(make_webp, ".webp")


def cached_glb(*, objects: int = 1, subdivisions: int = 2, texture_size: int = 64, image_format: str = "AUTO") -> Path:
    # The default format stays out of the key, so files cached before it existed still count.
    extra = {} if image_format == "AUTO" else {"image_format": image_format}
    return _cached_glb(objects=objects, subdivisions=subdivisions, texture_size=texture_size, **extra)


def cached_webp(size: int = 64) -> Path:
    return _cached_webp(size=size)


# ---- pictures Blender writes, and what Blender decodes from memory ------------------------

_PICTURES_SCRIPT = BLENDER_SCRIPT_HEAD + r"""
formats = [e.identifier for e in bpy.types.ImageFormatSettings.bl_rna.properties["file_format"].enum_items]
found = {}
scene = bpy.context.scene

def decoded(name, data):
    # What the glTF importer does with an embedded picture: pack it, let Blender decode it.
    image = bpy.data.images.new(name, 8, 8)
    image.pack(data=data, data_len=len(data))
    image.source = "FILE"
    width, height = image.size
    result = {"width": width, "height": height, "float": bool(image.is_float), "bytes": len(data)}
    bpy.data.images.remove(image)
    return result

source = bpy.data.images.new("source", 37, 23, alpha=True, float_buffer=True)
source.pixels.foreach_set(np.random.default_rng(1).random(37 * 23 * 4, dtype=np.float32))
for file_format in formats:
    if file_format == "FFMPEG":
        continue
    settings = scene.render.image_settings
    try:
        settings.file_format = file_format
    except TypeError:  # 5.x: multilayer EXR is a property of OPEN_EXR
        continue
    depths = [item.identifier for item in settings.bl_rna.properties["color_depth"].enum_items] or [""]
    for depth in depths:
        if depth:
            try:
                settings.color_depth = depth
            except TypeError:  # not a depth of this format
                continue
        name = f"{file_format}-{depth or 'default'}"
        path = os.path.join(p["out"], name)
        try:
            source.save_render(filepath=path, scene=scene)
        except RuntimeError as exc:
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        found[name] = {**decoded(name, data), "file": name}
for name in p["blobs"]:
    with open(os.path.join(p["out"], name), "rb") as handle:
        found[name] = {**decoded(name, handle.read()), "file": name}
with open(os.path.join(p["out"], "decoded.json"), "w") as handle:
    json.dump({"version": bpy.app.version_string, "pictures": found}, handle)
sys.stdout.flush()
os._exit(0)
"""


def make_pictures(dest: Path, blobs: dict[str, bytes]) -> Path:
    """A folder of pictures Blender saved in every format it writes (37 x 23,
    each colour depth), and ``decoded.json``: the size Blender decodes from each
    one's bytes, and from each of ``blobs``, the way the glTF importer does."""
    import shutil

    dest = Path(dest).resolve()
    work = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="hitem3d-blender-user-") as user:
        env = dict(os.environ, BLENDER_USER_RESOURCES=user, XDG_CACHE_HOME=user)
        for name, data in blobs.items():
            (work / name).write_bytes(data)
        params = {"out": str(work), "blobs": sorted(blobs)}
        result = subprocess.run([sys.executable, "-c", _PICTURES_SCRIPT, json.dumps(params)], env=env,
                                capture_output=True, text=True, timeout=600)
    if not (work / "decoded.json").is_file():
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"Blender subprocess failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(work, dest)
    return dest


def cached_pictures(blobs: dict[str, bytes]) -> Path:
    key = hashlib.sha256(json.dumps({name: hashlib.sha256(data).hexdigest() for name, data in sorted(blobs.items())})
                         .encode()).hexdigest()[:12]
    dest = cache_dir() / f"pictures-bpy{bpy_version()}-{key}"
    return dest if (dest / "decoded.json").is_file() else make_pictures(dest, blobs)


# ---- GLBs written by Blender's exporter, the way artists and pipelines write them -------------

_EXPORT_SCRIPT = BLENDER_SCRIPT_HEAD + r"""
def export(out, **extra):
    available = bpy.ops.export_scene.gltf.get_rna_type().properties.keys()
    options = {"export_format": "GLB", "use_selection": False}
    options.update({k: v for k, v in extra.items() if k in available})
    result = bpy.ops.export_scene.gltf(filepath=out, **options)
    if "FINISHED" not in result:
        sys.exit("glTF export returned %r" % (result,))

if p["kind"] == "shape_keys":
    # A head-sized mesh (about 127,000 vertices) with shape keys, each moving a patch.
    bpy.ops.mesh.primitive_uv_sphere_add(segments=512, ring_count=249)
    bpy.ops.object.shade_smooth()  # a head is smooth: its vertices are not split per face
    obj = bpy.context.active_object
    obj.shape_key_add(name="Basis")
    count = len(obj.data.vertices)
    rng = np.random.default_rng(7)
    for index in range(p["keys"]):
        key = obj.shape_key_add(name="Key_%d" % index)
        coords = np.empty(count * 3, np.float32)
        key.data.foreach_get("co", coords)
        start = int(rng.integers(0, count - 2000))
        coords[start * 3:(start + 2000) * 3] += 0.01
        key.data.foreach_set("co", coords)
    export(p["out"])
elif p["kind"] == "draco":
    # A grid of faces x quads, triangulated on export: 2 x quads triangles.
    side = int(round((p["faces"] / 2) ** 0.5))
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=side + 1, y_subdivisions=side + 1, size=10)
    export(p["out"], export_draco_mesh_compression_enable=True,
           export_draco_mesh_compression_level=p["level"])
    # What Blender builds from it, for the test to compare with the stream's counts.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=p["out"])
    meshes = [o.data for o in bpy.data.objects if o.type == "MESH"]
    with open(p["out"] + ".json", "w") as handle:
        json.dump({"vertices": sum(len(m.vertices) for m in meshes),
                   "faces": sum(len(m.polygons) for m in meshes)}, handle)
elif p["kind"] == "textures":
    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.active_object
    for index in range(p["count"]):
        image = bpy.data.images.new("Texture_%d" % index, p["size"], p["size"], alpha=False)
        image.generated_color = (0.2 * index, 0.5, 0.8, 1.0)
        material = bpy.data.materials.new("Material_%d" % index)
        if getattr(material, "node_tree", None) is None:
            material.use_nodes = True
        nodes, links = material.node_tree.nodes, material.node_tree.links
        texture = nodes.new("ShaderNodeTexImage")
        texture.image = image
        links.new(texture.outputs["Color"], next(n for n in nodes if n.type == "BSDF_PRINCIPLED").inputs["Base Color"])
        obj.data.materials.append(material)
    for index, polygon in enumerate(obj.data.polygons):
        polygon.material_index = index % p["count"]
    export(p["out"], export_image_format="JPEG")
leave(p["out"])
"""


@lru_cache(maxsize=None)
def exporter_writes_draco() -> bool:
    """Whether this bpy wheel ships the Draco library Blender's glTF exporter
    loads (4.2 looks for ``libextern_draco``, 5.x for ``libbf_intern_draco_bridge``,
    beside the add-on or in ``lib``). Without it the exporter writes plain
    meshes with only a console error: of the wheels we test, only 4.5 has it.
    Read from the wheel's files, without importing bpy or starting a Blender."""
    from importlib.util import find_spec

    spec = find_spec("bpy")
    roots = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    names = ("libextern_draco.", "extern_draco.", "libbf_intern_draco_bridge.", "bf_intern_draco_bridge.")
    return any(found.name.startswith(names) for root in roots for found in root.rglob("*draco*"))


def make_blender_export(dest: Path, **params: Any) -> Path:
    """A GLB written by Blender's glTF exporter: ``kind`` "shape_keys" (``keys``
    on a 127k-vertex sphere), "draco" (a grid of ``faces`` triangles at Draco
    ``level``, with ``<file>.json``: what Blender imports from it) or
    "textures" (``count`` pictures of ``size`` pixels a side)."""
    path = run_blender_script(_EXPORT_SCRIPT, params, dest, timeout_s=1500)
    made = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}.json")
    if made.is_file():
        os.replace(made, str(path) + ".json")
    return path


cached_blender_export = cached(make_blender_export, ".glb")
