"""Benchmark assets, made on demand and cached under ``.cache/bench-assets/``.

* ``realistic_glb``: what a Hitem3D result looks like (one smooth mesh of about a
  million triangles, a 4K base colour and a 4K normal map with real entropy),
  exported by Blender's own glTF exporter in a subprocess.
* ``padded_glb``: the same model with random bytes appended to its BIN chunk up
  to a given size: still a GLB Blender imports, but as heavy to download as a
  big result.
* ``filler_glb``: random bytes wrapped as a valid GLB header + BIN chunk, for
  pure download measurements (our downloader checks only header and length).

Nothing here is committed: ``.cache/`` is git-ignored. Delete the folder (or set
``HITEM3D_BENCH_CACHE``) to make everything again.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from tests.support.glb_factory import BLENDER_SCRIPT_HEAD, run_blender_script

REPO_ROOT = Path(__file__).resolve().parents[1]
# Bump when a recipe below changes, so stale cached assets are not reused.
RECIPE = "1"
_GLB_HEADER = struct.Struct("<4sII")
_CHUNK_HEADER = struct.Struct("<II")
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942


def cache_dir() -> Path:
    configured = os.environ.get("HITEM3D_BENCH_CACHE")
    path = Path(configured) if configured else REPO_ROOT / ".cache" / "bench-assets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bpy_version() -> str:
    try:
        return metadata.version("bpy")
    except metadata.PackageNotFoundError:
        return "unknown"


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _key(**params: Any) -> str:
    text = json.dumps({"recipe": RECIPE, **params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# Runs in `python -c` with bpy; parameters arrive as JSON in sys.argv[1].
_BLENDER_SCRIPT = BLENDER_SCRIPT_HEAD + r"""
rng = np.random.default_rng(p["seed"])


def upsample(grid, size):
    # Bilinear: a coarse random grid becomes smooth variation over the image.
    cells = grid.shape[0]
    pos = np.linspace(0, cells - 1, size, dtype=np.float32)
    i0 = np.minimum(pos.astype(np.int32), cells - 2)
    f = (pos - i0)[:, None, None]
    rows = grid[i0] * (1 - f) + grid[i0 + 1] * f
    f2 = f.reshape(1, size, 1)
    return rows[:, i0] * (1 - f2) + rows[:, i0 + 1] * f2


def fractal_noise(size, grain):
    # Several octaves of value noise plus per-pixel grain: compresses like a
    # photographed texture, not like a checker (which PNG squeezes to nothing).
    img = np.zeros((size, size, 3), np.float32)
    for cells, amp in ((6, 0.45), (24, 0.25), (96, 0.15), (384, 0.1)):
        img += amp * upsample(rng.random((cells, cells, 3), dtype=np.float32), size)
    img += rng.normal(0.0, grain / 255.0, img.shape).astype(np.float32)
    return img


def save_png(name, rgb):
    size = rgb.shape[0]
    rgba = np.concatenate([np.clip(rgb, 0.0, 1.0), np.ones((size, size, 1), np.float32)], axis=-1)
    image = bpy.data.images.new(name, size, size, alpha=False)
    image.pixels.foreach_set(rgba.ravel())
    path = os.path.join(p["workdir"], name + ".png")
    image.filepath_raw = path
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)
    # Loaded back as a file image: the exporter then embeds these PNG bytes as is.
    return bpy.data.images.load(path)


bpy.ops.mesh.primitive_monkey_add()
obj = bpy.context.active_object
obj.name = obj.data.name = "Hitem3D_Model"
modifier = obj.modifiers.new("Subdivision", "SUBSURF")
modifier.levels = modifier.render_levels = p["subdivisions"]
bpy.ops.object.modifier_apply(modifier=modifier.name)
mesh = obj.data
# A little noise on the surface, like a generated scan; smooth shading as Hitem3D ships.
count = len(mesh.vertices)
co = np.empty(count * 3, np.float32)
mesh.vertices.foreach_get("co", co)
co += rng.normal(0.0, 0.002, co.shape).astype(np.float32)
mesh.vertices.foreach_set("co", co)
mesh.shade_smooth()
mesh.update()

material = bpy.data.materials.new("Hitem3D_Material")
if getattr(material, "node_tree", None) is None:
    material.use_nodes = True
nodes, links = material.node_tree.nodes, material.node_tree.links
bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
size = p["texture_size"]
base = nodes.new("ShaderNodeTexImage")
base.image = save_png("Hitem3D_BaseColor", fractal_noise(size, p["grain"]))
links.new(base.outputs["Color"], bsdf.inputs["Base Color"])
normal_rgb = 0.5 + 0.15 * (fractal_noise(size, p["grain"]) - 0.5)
normal_rgb[..., 2] = 1.0 - 0.1 * normal_rgb[..., 2]
normal_tex = nodes.new("ShaderNodeTexImage")
normal_tex.image = save_png("Hitem3D_Normal", normal_rgb)
normal_tex.image.colorspace_settings.name = "Non-Color"
normal_map = nodes.new("ShaderNodeNormalMap")
links.new(normal_tex.outputs["Color"], normal_map.inputs["Color"])
links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
mesh.materials.append(material)

export_glb(p["out"])
leave(p["out"])
"""


def read_glb(path: Path) -> tuple[dict[str, Any], bytes]:
    """The JSON document and the BIN chunk of a GLB."""
    data = path.read_bytes()
    magic, version, length = _GLB_HEADER.unpack_from(data, 0)
    if magic != b"glTF" or version != 2 or length != len(data):
        raise ValueError(f"{path} is not a complete GLB 2.0")
    json_length, json_type = _CHUNK_HEADER.unpack_from(data, 12)
    if json_type != _CHUNK_JSON:
        raise ValueError(f"{path}: first chunk is not JSON")
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    binary = b""
    if offset < len(data):
        bin_length, bin_type = _CHUNK_HEADER.unpack_from(data, offset)
        if bin_type == _CHUNK_BIN:
            binary = data[offset + 8 : offset + 8 + bin_length]
    return document, binary


def glb_stats(path: Path) -> dict[str, Any]:
    """Triangles, images and sizes of a GLB, for the report."""
    document, _ = read_glb(path)
    triangles = 0
    for mesh in document.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            index = primitive.get("indices")
            if index is not None:
                triangles += document["accessors"][index]["count"] // 3
            else:
                triangles += document["accessors"][primitive["attributes"]["POSITION"]]["count"] // 3
    images = [
        {"mime": image.get("mimeType", ""), "bytes": document["bufferViews"][image["bufferView"]]["byteLength"]}
        for image in document.get("images", [])
        if "bufferView" in image
    ]
    return {"bytes": path.stat().st_size, "triangles": triangles, "images": images}


def _write_padded_glb(dest: Path, document: dict[str, Any], binary: bytes, size: int) -> None:
    """Write a GLB of exactly ``size`` bytes: ``document``, then ``binary``
    followed by random bytes in its BIN chunk (``buffers[0]`` covers them all)."""
    if size % 4:
        raise ValueError("a GLB's length is a multiple of 4")
    document = json.loads(json.dumps(document))
    document.setdefault("buffers", [{}])
    # byteLength is not known until the JSON length is: reserve room for its digits.
    probe = json.dumps(dict(document, buffers=[dict(document["buffers"][0], byteLength=size)] + document["buffers"][1:]),
                       separators=(",", ":")).encode()
    json_length = len(probe) + (-len(probe) % 4)
    binary_length = size - (12 + 8 + json_length + 8)
    padding = binary_length - len(binary)
    if padding < 0:
        raise ValueError(f"{len(binary)} bytes of BIN do not fit in a {size}-byte GLB")
    document["buffers"][0]["byteLength"] = binary_length
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (json_length - len(text))  # the spec pads JSON with spaces
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as file:
        file.write(_GLB_HEADER.pack(b"glTF", 2, size))
        file.write(_CHUNK_HEADER.pack(json_length, _CHUNK_JSON) + text)
        file.write(_CHUNK_HEADER.pack(binary_length, _CHUNK_BIN) + binary)
        for part in _random_parts(padding):
            file.write(part)
    os.replace(tmp, dest)
    if dest.stat().st_size != size:
        raise AssertionError(f"{dest.name} came out {dest.stat().st_size} bytes, not {size}")


def _random_parts(count: int, block: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    # Random, so nothing on the way (compression, dedup) makes the file lighter than it is.
    while count > 0:
        size = min(block, count)
        yield os.urandom(size)
        count -= size


def realistic_glb(*, quick: bool = False) -> Path:
    """The Hitem3D-like result (cached); quick: 4x fewer triangles, 2K textures."""
    params = {
        "subdivisions": 4 if quick else 5,
        "texture_size": 2048 if quick else 4096,
        "grain": 1.0,
        "seed": 20240601,
    }
    dest = cache_dir() / f"realistic-bpy{bpy_version()}-{_key(**params)}.glb"
    if dest.is_file():
        return dest
    _log(f"making {dest.name} with Blender's glTF exporter (once; a few minutes)")
    started = time.monotonic()
    run_blender_script(_BLENDER_SCRIPT, params, dest, timeout_s=1800)
    _log(f"made {dest.name}: {dest.stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s")
    return dest


def padded_glb(source: Path, size: int) -> Path:
    """``source`` with random bytes appended to its BIN chunk, ``size`` bytes in all (cached)."""
    dest = cache_dir() / f"{source.stem}-padded-{size}.glb"
    if dest.is_file() and dest.stat().st_size == size:
        return dest
    document, binary = read_glb(source)
    _log(f"making {dest.name} ({size / 1e6:.0f} MB)")
    _write_padded_glb(dest, document, binary, size)
    return dest


def filler_glb(size: int) -> Path:
    """``size`` bytes: a GLB header, a minimal document and random BIN bytes (cached)."""
    dest = cache_dir() / f"filler-{size}.glb"
    if dest.is_file() and dest.stat().st_size == size:
        return dest
    document: dict[str, Any] = {"asset": {"version": "2.0", "generator": "hitem3d-blender benchmarks"}}
    _log(f"making {dest.name} ({size / 1e6:.0f} MB of random bytes)")
    _write_padded_glb(dest, document, b"", size)
    return dest
