"""Patching the worker process in a test.

The add-on's workers run in a child process (``core.worker_process``), so a
``monkeypatch`` of a core module in the test's process never reaches the code
that downloads or retries. ``patch_workers`` gives the session a worker
process whose Python first runs ``source`` (with the child's core package as
``core``), then the worker as usual.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

_WRAPPER = """#!{python}
# A stand-in for Python's executable: started as ``<this> -E -s -c BOOT <add-on folder>``.
import sys, types
package = types.ModuleType("hitem3d_worker")
package.__path__ = [sys.argv[-1]]
sys.modules["hitem3d_worker"] = package
import hitem3d_worker.core as core
{imports}
{source}
from hitem3d_worker.core.worker_main import main
sys.exit(main())
"""


def patch_workers(addon: ModuleType, folder: Path, source: str, modules: tuple[str, ...] = ()) -> None:
    """From now until the session's shutdown, the workers run ``source``
    first; ``modules`` (names under ``core``) are imported for it."""
    wrapper = folder / "python-with-patch"
    imports = "\n".join(f"import hitem3d_worker.core.{name}" for name in modules)
    wrapper.write_text(_WRAPPER.format(python=sys.executable, imports=imports, source=source), encoding="utf-8")
    wrapper.chmod(0o755)
    state = addon.engine.state
    if state.current.runner is not None:
        state.current.runner.shutdown()
    state.current.runner = addon.core.worker_process.WorkerProcess(python=str(wrapper))
