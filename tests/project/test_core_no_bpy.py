"""The core promises to be plain Python: importing it must not pull in Blender."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE_MODULES = ("errors", "settings", "task_ids", "api", "downloader", "tasks", "pipeline", "jobs", "logs",
                "models", "submission", "mesh_files", "prices")


def test_importing_every_core_module_does_not_import_bpy() -> None:
    # A fresh interpreter: other tests cannot have imported bpy (or hidden it) first.
    imports = "; ".join(f"import hitem3d_blender.core.{name}" for name in CORE_MODULES)
    script = (
        f"import sys; {imports}; "
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('bpy', 'mathutils', 'bmesh', '_bpy')); "
        "print('LEAKED', leaked); sys.exit(1 if leaked else 0)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LEAKED []" in result.stdout
