"""Try Hitem3D for Blender in your own Blender without a Hitem3D account:
``python build.py sandbox``.

Starts the project's Hitem3D simulator (``tests/support/simulator.py``, the
same stand-in every test talks to) on this computer, with ready tasks of every
kind, and prints what to paste into Blender: the API base URL, the credentials
and the task IDs. Generation, Texture Selection, parts, reliefs and multicolour
sent from the sidebar work against it too (1,000 play credits). Nothing leaves
this computer. Ctrl+C stops it.

Standard library only, so any Python 3.11 or newer runs it, without the
project's virtual environments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a file: python tests/sandbox.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import sandbox_assets
from tests.support.simulator import Hitem3DSimulator, StateEntry

DEFAULT_PORT = 8765  # the storage takes the next one
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"

# Each ready task passes through the states a real one does, one per status
# check (every 3 s by default), so the list shows them moving.
RUNNING: tuple[StateEntry, ...] = ("queueing", {"state": "processing", "progress": 35},
                                   {"state": "processing", "progress": 80}, "success")
# Hitem3D's answer for a generation it could not make (code 50010001, credits refunded).
FAILED: tuple[StateEntry, ...] = ("queueing", {"state": "processing", "progress": 50},
                                  {"code": 50010001, "msg": "generate failed", "data": {}})


@dataclass(frozen=True)
class SandboxTask:
    what: str
    task_id: str
    states: tuple[StateEntry, ...]
    result: bytes
    cover: bytes
    extension: str = "glb"


def tasks() -> list[SandboxTask]:
    """The ready tasks, one or two of each kind, with fixed IDs (an ID pasted
    yesterday still works today)."""
    pawn, cover = sandbox_assets.pawn_glb_bytes(), sandbox_assets.cover_png_bytes()
    parts = sandbox_assets.pawn_parts_glb_bytes(3)
    return [
        SandboxTask("a model (image to 3D)", "5a4db0c0ffee4d2e9f3a5a1d0b5e7c01.jjewelry-aigc-api.Sandbox0001",
                    RUNNING, pawn, cover),
        SandboxTask("a model that fails (to see Retry)",
                    "5a4db0c0ffee4d2e9f3a5a1d0b5e7c02.jjewelry-aigc-api.Sandbox0002", FAILED, pawn, cover),
        SandboxTask("parts (split)", "split_5a4db0c0ffee4d2e9f3a5a1d0b5e7c03", RUNNING, parts, cover),
        SandboxTask("segments (segmentation)", "segmentation_5a4db0c0ffee4d2e9f3a5a1d0b5e7c04", RUNNING,
                    sandbox_assets.pawn_parts_glb_bytes(4), cover),
        SandboxTask("a relief (depth map)", "depth_5a4db0c0ffee4d2e9f3a5a1d0b5e7c05", RUNNING,
                    sandbox_assets.pawn_depth_png_bytes(), cover, "png"),
        SandboxTask("multicolour", "multicolor_5a4db0c0ffee4d2e9f3a5a1d0b5e7c06", RUNNING,
                    sandbox_assets.pawn_colour_glb_bytes(), cover),
    ]


def start(port: int = DEFAULT_PORT) -> tuple[Hitem3DSimulator, list[SandboxTask]]:
    """A started simulator with the sandbox's tasks; what the sidebar sends
    gets the same pawn back. Raises ``OSError`` when a port is taken."""
    sim = Hitem3DSimulator(CLIENT_ID, CLIENT_SECRET)
    sim.default_glb = sandbox_assets.pawn_glb_bytes()
    sim.default_states = RUNNING
    sim.kind_results = {"split": sandbox_assets.pawn_parts_glb_bytes(3),
                        "segmentation": sandbox_assets.pawn_parts_glb_bytes(4),
                        "depth": sandbox_assets.pawn_depth_png_bytes(),
                        "multicolor": sandbox_assets.pawn_colour_glb_bytes()}
    try:
        sim.start(port, port + 1 if port else 0)
    except OSError:
        sim.stop()
        raise
    ready = tasks()
    for task in ready:
        sim.add_task(task.task_id, task.states, glb=task.result, cover=task.cover, extension=task.extension)
    return sim, ready


def environment(sim: Hitem3DSimulator) -> dict[str, str]:
    """The variables that point an add-on at the sandbox, uploads included."""
    return {"HITEM3D_API_BASE": sim.base_url, "HITEM3D_CLIENT_ID": CLIENT_ID,
            "HITEM3D_CLIENT_SECRET": CLIENT_SECRET, **sim.upload_environment()}


def zip_hint() -> str:
    """The extension zip, where it is if it was built here."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    manifest = tomllib.loads((root / "blender_manifest.toml").read_text("utf-8"))
    built = root / "dist" / f"{manifest['id']}-{manifest['version']}.zip"
    if built.is_file():
        return str(built)
    return f"the extension zip ({built.name}: download it, or build it with `python build.py`)"


def instructions(sim: Hitem3DSimulator, ready: Sequence[SandboxTask]) -> str:
    env = environment(sim)
    posix = " ".join(f"{name}={value}" for name, value in env.items())
    powershell = "; ".join(f'$env:{name}="{value}"' for name, value in env.items())
    width = max(len(task.what) for task in ready)
    lines = [
        f"Hitem3D sandbox: a local stand-in for Hitem3D at {sim.base_url}",
        "No account, nothing paid (1,000 play credits); requests stay on this computer.",
        "",
        f"1. Install {zip_hint()} in Blender (Edit > Preferences > Get Extensions >",
        "   Install from Disk) and allow online access (Edit > Preferences > System > Network).",
        "2. Point it at the sandbox, either way:",
        "   a) Edit > Preferences > Add-ons > Hitem3D, then press Test Connection:",
        f"        API base URL   {sim.base_url}",
        f"        Client ID      {CLIENT_ID}",
        f"        Client Secret  {CLIENT_SECRET}",
        "      (set the API base URL back to https://api.hitem3d.ai when you are done; Texture Selection",
        "      needs b): only these variables send its upload to the sandbox instead of Hitem3D's storage)",
        "   b) or start Blender from a shell with these variables (they apply while the preferences'",
        "      Client ID and Secret are empty and the API base URL is at its default):",
        f"        {posix} blender",
        f"      Windows PowerShell: {powershell}; blender",
        "3. Paste task IDs in the 3D Viewport's sidebar (N > Hitem3D), one or all at once, and press Import:",
        *(f"     {task.what:<{width}}  {task.task_id}" for task in ready),
        "   New Generation, Texture Selection, Split, Segment, Multicolour and Make Relief work too.",
        "",
        "Requests are listed below as they arrive. Ctrl+C stops the sandbox.",
    ]
    return "\n".join(lines)


def describe(method: str, path: str, query: dict[str, str], storage: bool) -> str:
    """One request as a log line, without its credentials."""
    if storage:
        return f"{method} (storage) {path}"
    if path.startswith("/files/"):
        return f"{method} {path.split('/')[-1]} (a result file)"
    shown = {key: value for key, value in query.items() if key == "task_id"}
    return f"{method} {path}" + (f"?{urlencode(shown)}" if shown else "")


def _stop_on_terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(sim: Hitem3DSimulator, quiet: bool = False, out: TextIO | None = None) -> None:
    """List requests as they arrive until Ctrl+C (or SIGTERM)."""
    out = out or sys.stdout
    shown = 0
    try:
        while True:
            time.sleep(0.2)
            requests = sim.requests
            for request in requests[shown:] if not quiet else []:
                stamp = time.strftime("%H:%M:%S", time.localtime(request.time))
                print(f"{stamp}  {describe(request.method, request.path, request.query, request.storage)}",
                      file=out, flush=True)
            shown = len(requests)
    except KeyboardInterrupt:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build.py sandbox",
        description="Start a local stand-in for Hitem3D with ready tasks of every kind, and print the API base "
        "URL, credentials and task IDs to paste into your own Blender. No account, nothing paid; requests stay on "
        "this computer. Ctrl+C stops it.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the API's port on 127.0.0.1; the upload storage takes the next one "
                             "(default: %(default)s; 0: any free ports)")
    parser.add_argument("--quiet", action="store_true", help="do not list requests as they arrive")
    args = parser.parse_args(argv)
    try:
        sim, ready = start(args.port)
    except OSError as exc:
        print(f"sandbox: cannot listen on 127.0.0.1:{args.port} or {args.port + 1} ({exc.strerror or exc}): "
              "another sandbox may be running; choose other ports with --port", file=sys.stderr)
        return 1
    # NOTE: SIGTERM stops it as cleanly as Ctrl+C (a terminal closed, a test);
    # Ctrl+C works even where a shell started it with SIGINT ignored.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {number: signal.signal(number, handler) for number, handler in
                ((signal.SIGTERM, _stop_on_terminate), (signal.SIGINT, signal.default_int_handler))} if in_main else {}
    try:
        print(instructions(sim, ready), flush=True)
        serve(sim, args.quiet)
    finally:
        sim.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("Sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
