"""Run every benchmark and print one JSON object with every figure.

    python -m benchmarks [--quick] [--only NAME ...] [--zip PATH] [--output FILE]

Run it with the interpreter of .venv (it has bpy), or let ``python build.py
bench`` set that up. Progress goes to stderr, the JSON to stdout. Exits 0
whether or not a target is met: these print numbers, they are not tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import assets
from benchmarks.common import REPO_ROOT, log

ORDER = ("main_thread", "main_thread_long_history", "main_thread_oversized_journal", "enable", "appends", "download",
         "time_to_scene", "request_economy", "conversion", "converter_start", "scale", "fairness", "offload",
         "gui_frames")
BLENDER_BENCHMARKS = set(ORDER) - {"download", "conversion", "offload", "gui_frames"}


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    except OSError:
        return "unavailable"
    if result.returncode != 0:
        return "unavailable"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else ""  # e.g. `git status --porcelain` on a clean tree


def _proc_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _load() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _proc_value("/proc/meminfo", "MemTotal")
    commit = _first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "status", "--porcelain", "--untracked-files=no"]) not in ("", "unavailable")
    return {
        "cpus": usable,
        "cpu_model": _proc_value("/proc/cpuinfo", "model name"),
        "memory_total": memory,
        "python": platform.python_version(),
        "bpy": assets.bpy_version(),
        "platform": platform.platform(),
        "curl": _first_line(["curl", "--version"]) if shutil.which("curl") else "unavailable",
        "git_commit": f"{commit}{' (with uncommitted changes)' if dirty else ''}",
    }


def build_zip(dest: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    import build

    return Path(build.build_zip(dest))


def run_blender_benchmark(name: str, zip_path: Path, quick: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.blender_bench", name, "--zip", str(zip_path)]
    if quick:
        command.append("--quick")
    result = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"benchmarks.blender_bench {name} failed (exit code {result.returncode})")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def targets_of(results: dict[str, Any]) -> dict[str, Any]:
    """Every ``target_*`` figure, flattened: ``{"main_thread.max_ms": {...}}``."""
    found: dict[str, Any] = {}
    for bench, figures in results.items():
        if isinstance(figures, dict):
            for key, value in figures.items():
                if key.startswith("target_") and isinstance(value, dict):
                    found[f"{bench}.{key[len('target_'):]}"] = value
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller files and fewer rounds (about a minute)")
    parser.add_argument("--only", nargs="+", choices=ORDER, metavar="NAME",
                        help=f"run only these benchmarks ({', '.join(ORDER)})")
    parser.add_argument("--zip", type=Path, help="an extension zip to test (default: build one from the source)")
    parser.add_argument("--output", type=Path, help="also write the JSON object to this file")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("bpy") is None:
        parser.exit(2, f"{parser.prog}: error: this Python has no bpy; run it with .venv/bin/python, "
                       "or run `python build.py bench`\n")
    chosen = [name for name in ORDER if not args.only or name in args.only]
    started = time.monotonic()
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    log(f"machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, "
        f"bpy {report['machine']['bpy']}")

    # Assets first, so making them once never counts in a figure.
    realistic = assets.realistic_glb(quick=args.quick)
    report["asset"] = {"file": realistic.name, **assets.glb_stats(realistic)}

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hitem3d-bench-zip-") as tmp:
        zip_path = args.zip
        if zip_path is None and (BLENDER_BENCHMARKS | {"gui_frames"}) & set(chosen):
            zip_path = build_zip(Path(tmp))
            log(f"built {zip_path.name}")
        for name in chosen:
            log(f"running {name}")
            load_before = _load()
            try:
                if name in BLENDER_BENCHMARKS:
                    assert zip_path is not None
                    results[name] = run_blender_benchmark(name, zip_path, args.quick)
                elif name == "conversion":
                    # Its own processes: each side's peak memory is its own.
                    from benchmarks.conversion_bench import bench_conversion

                    results[name] = bench_conversion(args.quick)
                elif name == "gui_frames":
                    # The real window (tests/gui/probe.py); "skipped" where that tier cannot run.
                    from tests.gui.probe import run_probe

                    assert zip_path is not None
                    results[name] = run_probe(zip_path)
                elif name == "offload":
                    from benchmarks.offload_bench import bench_offload

                    results[name] = bench_offload(args.quick)
                else:
                    from benchmarks.download_bench import bench_download

                    results[name] = bench_download(args.quick)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                log(f"{name} failed: {exc}")
                results[name] = {"error": str(exc)}
            # Other work on the machine only ever adds time: each figure says how loaded it was.
            results[name]["load_average"] = {"before": load_before, "after": _load()}
    report["benchmarks"] = results
    targets = targets_of(results)
    report["targets"] = {name: figure.get("met") for name, figure in targets.items()}
    report["all_targets_met"] = bool(targets) and all(figure.get("met") is True for figure in targets.values())
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(report, indent=1)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
