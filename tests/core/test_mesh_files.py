"""The checks a mesh file passes before it is sent to Hitem3D."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitem3d_blender.core import mesh_files
from hitem3d_blender.core.mesh_files import MeshFileRejected, check_mesh_file


def glb(tmp_path: Path, size: int = 64, name: str = "chair.glb") -> Path:
    path = tmp_path / name
    path.write_bytes(b"glTF" + b"\0" * (size - 4))
    return path


def test_a_glb_within_the_limit_passes_and_its_size_is_returned(tmp_path: Path) -> None:
    assert check_mesh_file(str(glb(tmp_path, 128))) == 128


def test_a_mesh_over_200_mb_is_refused_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mesh_files, "MAX_MESH_BYTES", 1_000_000)
    with pytest.raises(MeshFileRejected, match=r"chair.glb is 2.0 MB; Hitem3D accepts at most 200 MB"):
        check_mesh_file(str(glb(tmp_path, 2_000_000)))


def test_the_limit_is_200_decimal_megabytes() -> None:
    # Hitem3D writes "200 MB": 200,000,000 bytes, not 200 MiB.
    assert mesh_files.MAX_MESH_BYTES == 200_000_000


@pytest.mark.parametrize(("name", "content", "message"), [
    ("chair.fbx", b"glTF", "not a GLB file"),
    ("chair.glb", b"", "is empty"),
    ("chair.glb", b"<html>", "no glTF header"),
])
def test_a_file_hitem3d_would_refuse_is_refused_before_sending(tmp_path: Path, name: str, content: bytes,
                                                               message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MeshFileRejected, match=message):
        check_mesh_file(str(path))


def test_a_missing_file_or_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MeshFileRejected, match="file not found"):
        check_mesh_file(str(tmp_path / "gone.glb"))
    (tmp_path / "dir.glb").mkdir()
    with pytest.raises(MeshFileRejected, match="is not a file"):
        check_mesh_file(str(tmp_path / "dir.glb"))


def test_kinds_that_take_stl_or_obj_can_allow_them(tmp_path: Path) -> None:
    path = tmp_path / "part.stl"
    path.write_bytes(b"solid x")
    assert check_mesh_file(str(path), allowed=("glb", "stl", "obj")) == 7
