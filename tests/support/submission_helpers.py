"""Pictures for submission tests (no Blender needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitem3d_blender.core.submission import VIEWS
from tests.support.picture_factory import png

PNG_BYTES = png()


def view_png(view: str) -> bytes:
    """A real PNG of its own colour for each view."""
    return png(rgba=(40 * VIEWS.index(view), 100, 200, 255))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, str]:
    """One small picture per view, each with its own content."""
    paths = {}
    for view in VIEWS:
        path = tmp_path / f"{view}.png"
        path.write_bytes(view_png(view))
        paths[view] = str(path)
    return paths
