"""Pictures for submission tests (no Blender needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitem3d_blender.core.submission import VIEWS

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
def images(tmp_path: Path) -> dict[str, str]:
    """One small picture per view, each with its own content."""
    paths = {}
    for view in VIEWS:
        path = tmp_path / f"{view}.png"
        path.write_bytes(PNG_BYTES + view.encode())
        paths[view] = str(path)
    return paths
