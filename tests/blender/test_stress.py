"""Blender's operators beside busy workers: no crash is possible.

Each test runs ``tests.support.stress`` in a Blender of its own (a crash must
fail the test, not end the suite): undo pushes, appends, saves, glTF imports,
modifier applies and typing into a script that has run, each under
``temp_override``, while every worker checks, downloads, calls and writes.
See docs/threads-in-blender.md for why a Python thread in Blender's process
crashed it there.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def stress(built_zip: Path, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.stress", "--zip", str(built_zip), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)


def crashed(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode >= 0:
        return ""
    return f"Blender died from {signal.Signals(-result.returncode).name}:\n{result.stderr[-6000:]}"


def test_operators_beside_busy_workers_never_crash_blender(built_zip: Path) -> None:
    result = stress(built_zip, "--seconds", "8")
    assert not crashed(result), crashed(result)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Every operator ran, again and again, while the workers answered.
    assert set(report["operators"]) == {"undo_push", "append", "save", "import_gltf", "modifier_apply",
                                        "type_in_script"}
    assert min(report["operators"].values()) >= 3, report
    assert report["calls_done"] >= 10 and report["updates"] >= 10 and report["downloads_done"] >= 1, report
    assert report["python_threads_in_blender"] == [], report


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 and newer keep the running thread per "
                    "thread: Blender's GIL check is right there, and nothing crashes")
def test_the_stress_run_catches_a_python_thread_in_blenders_process(built_zip: Path) -> None:
    """The hazard itself, one plain Python thread in Blender's process: the
    same run must crash, or it could not see the crash it guards against."""
    result = stress(built_zip, "--seconds", "60", "--python-thread")
    assert result.returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS), (
        f"exit code {result.returncode}: {result.stdout[-2000:]}")
    assert "Fatal Python error" in result.stderr
