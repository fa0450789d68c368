"""Blender operators in a loop on the main thread while every worker is busy.

    python -m tests.support.stress [--seconds 10] [--zip PATH] [--python-thread]

Run with a venv's Python (``.venv-bpy4.2/bin/python -m tests.support.stress``).
The add-on is installed into a throwaway Blender user folder and pointed at
the simulator, which runs in a process of its own (its threads must not be
the ones that run Python beside Blender). Then, for ``--seconds``:

- the API workers check the status of ``--tasks`` tasks and run one-off calls
  (balance checks, kept in flight), the download workers fetch results over
  and over, and the journal is saved at every step;
- the main thread runs, in turn, an undo push, an append, a save, a glTF
  import, a modifier apply, and typing into a script that has run (Blender's
  Text Editor), each inside ``bpy.context.temp_override`` as the window gives
  an add-on's operator (``--no-override`` runs them bare).

This is where Blender 4.2 to 5.0 crashed when a Python thread of ours ran
beside an operator: with Python 3.11, Blender's check "do I hold the GIL?"
answers yes whenever any thread holds it, and the main thread then touches
Python objects unlocked (see ``docs/threads-in-blender.md``). With the
workers in their own process nothing of ours runs Python in Blender's.

``--python-thread`` adds one plain Python thread to Blender's process, the
hazard itself: on a Python 3.11 build it must crash within seconds, which
shows that this run can see the crash it guards against.

Prints one JSON line with what ran; exit code 0 when nothing crashed (a crash
ends the process with a signal, and faulthandler prints every thread's stack).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tests.support.isolation import throwaway_user_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDON_MODULE = "bl_ext.user_default.hitem3d_blender"


def _task_id(number: int) -> str:
    return f"{number:032x}.jjewelry-aigc-api.Stress{number:05d}"


class Stress:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        import bpy

        self.args = args
        self.work = work
        self.serial = 0
        self.counts: dict[str, int] = {}
        self.downloads_done = 0
        self.calls_done = 0
        self.updates = 0
        zip_path = Path(args.zip) if args.zip else self._build_zip()
        bpy.context.preferences.system.use_online_access = True
        result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=str(zip_path),
                                                          enable_on_install=True)
        if result != {"FINISHED"}:
            raise RuntimeError(f"installing {zip_path.name} returned {result}")
        self.addon = sys.modules[ADDON_MODULE]
        # The interactive path: operators return at once, the timer applies results.
        self.addon.engine.state.runs_to_end = lambda: False
        self.addon.engine.conversions.USE_CHILD_PROCESS = False
        from tests.support.glb_factory import cached_glb

        self.glb = cached_glb(objects=2)
        self.library = self._make_library()
        self.text = self._make_script()

    def _build_zip(self) -> Path:
        sys.path.insert(0, str(REPO_ROOT))
        import build

        return build.build_zip(self.work / "dist")

    def _make_library(self) -> Path:
        """A .blend with one object to append from."""
        import bpy

        bpy.ops.mesh.primitive_monkey_add()
        monkey = bpy.context.view_layer.objects.active
        monkey.name = "StressMonkey"
        path = self.work / "library.blend"
        bpy.data.libraries.write(str(path), {monkey})
        bpy.data.objects.remove(monkey)
        return path

    def _make_script(self) -> Any:
        """A text that has run once: Blender keeps its compiled code, which
        typing into it frees (``BPY_text_free_code``)."""
        import bpy

        text = bpy.data.texts.new("stress.py")
        text.write("value = 1\n")
        with bpy.context.temp_override(edit_text=text):
            bpy.ops.text.run_script()
        return text

    # -- the workers' load ------------------------------------------------------------------

    def new_task(self, sim: Any, states: list[Any], glb: Path | None = None) -> str:
        self.serial += 1
        task_id = _task_id(self.serial)
        sim.add_task(task_id, states, glb=glb)
        self.addon.engine.control.start_import(task_id, self.settings())
        return task_id

    def settings(self) -> Any:
        return self.addon.engine.state.hooks.settings()

    def balance_call(self) -> Any:
        calls = getattr(self.addon.core, "calls", None)
        if calls is not None:
            return calls.balance()
        return lambda client: client.balance()  # the engine before named calls

    def keep_workers_busy(self, sim: Any, downloading: set[str], calls: set[str]) -> None:
        """Downloads that ended start again; calls that answered are asked again."""
        addon = self.addon
        for task_id in list(downloading):
            rec = addon.engine.history.book().get(task_id)
            if rec is None or rec.state.name in ("DOWNLOADED", "DONE", "FAILED", "CANCELLED"):
                if rec is not None and rec.state.name == "DOWNLOADED":
                    self.downloads_done += 1
                addon.engine.control.remove(task_id)
                downloading.discard(task_id)
                downloading.add(self.new_task(sim, ["processing", "success"], self.glb))
        runner = addon.engine.state.runner()
        for key in list(calls):
            if not runner.is_running(key):
                calls.discard(key)
        while len(calls) < self.args.calls:
            self.serial += 1
            key = f"stress-balance-{self.serial}"
            addon.engine.control.start_call(key, self.settings(), self.balance_call())
            calls.add(key)

    # -- the main thread's operators ----------------------------------------------------------

    def operators(self) -> list[tuple[str, Callable[[], Any], Callable[[], dict[str, Any]]]]:
        import bpy

        def undo_push() -> Any:
            return bpy.ops.ed.undo_push(message="stress")

        def append() -> Any:
            directory = str(self.library / "Object") + os.sep
            return bpy.ops.wm.append(filepath=directory + "StressMonkey", directory=directory,
                                     filename="StressMonkey")

        def save() -> Any:
            return bpy.ops.wm.save_as_mainfile(filepath=str(self.work / "stress.blend"), copy=True)

        def import_gltf() -> Any:
            return bpy.ops.import_scene.gltf(filepath=str(self.glb))

        def modifier_apply() -> Any:
            obj = bpy.data.objects.new("StressCube", bpy.data.meshes.new("StressCube"))
            bpy.context.scene.collection.objects.link(obj)
            obj.data.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
            modifier = obj.modifiers.new("Stress", "SUBSURF")
            with bpy.context.temp_override(object=obj, active_object=obj):
                return bpy.ops.object.modifier_apply(modifier=modifier.name)

        def type_in_script() -> Any:
            with bpy.context.temp_override(edit_text=self.text):
                bpy.ops.text.run_script()
                return bpy.ops.text.insert(text="#")

        def window() -> dict[str, Any]:
            return {"scene": bpy.context.scene, "view_layer": bpy.context.view_layer}

        def nothing() -> dict[str, Any]:
            return {}

        return [("undo_push", undo_push, window), ("append", append, window), ("save", save, window),
                ("import_gltf", import_gltf, window), ("modifier_apply", modifier_apply, nothing),
                ("type_in_script", type_in_script, nothing)]

    def clean_scene(self) -> None:
        import bpy

        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        for collection in (bpy.data.meshes, bpy.data.materials, bpy.data.images):
            for block in list(collection):
                if block.users == 0:
                    collection.remove(block)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        import bpy

        from benchmarks.simproc import SimulatorProcess

        args = self.args
        if args.python_thread:
            _start_python_thread()
        with SimulatorProcess() as sim:
            prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
            prefs.base_url = sim.base_url
            prefs.client_id = sim.client_id
            prefs.client_secret = sim.client_secret
            prefs.poll_interval = 0.1
            prefs.auto_import = False
            for _ in range(args.tasks):
                self.new_task(sim, ["processing"])  # checked until the end
            downloading = {self.new_task(sim, ["processing", "success"], self.glb) for _ in range(args.downloads)}
            calls: set[str] = set()
            operators = self.operators()
            override = not args.no_override
            deadline = time.monotonic() + args.seconds
            turn = 0
            while time.monotonic() < deadline:
                self.updates += len(self._tick())
                self.keep_workers_busy(sim, downloading, calls)
                self.addon.engine.history.changed()  # a journal write at every tick
                name, operator, context = operators[turn % len(operators)]
                if override:
                    with bpy.context.temp_override(**context()):
                        result = operator()
                else:
                    result = operator()
                if result != {"FINISHED"}:
                    raise RuntimeError(f"{name} returned {result}")
                self.counts[name] = self.counts.get(name, 0) + 1
                turn += 1
                if turn % 30 == 0:
                    self.clean_scene()
            threads = sorted(thread.name for thread in threading.enumerate()
                             if thread is not threading.main_thread())
            self.addon.ui.session.shutdown()
        return {"bpy": ".".join(map(str, bpy.app.version)), "python": sys.version.split()[0],
                "seconds": args.seconds, "operators": self.counts, "downloads_done": self.downloads_done,
                "calls_done": self.calls_done, "updates": self.updates,
                "python_threads_in_blender": threads}

    def _tick(self) -> list[Any]:
        """The timer's call, counting what the workers sent."""
        runner = self.addon.engine.state.runner()
        drain = runner.drain
        seen: list[Any] = []

        def counting(limit: int = 1000) -> list[Any]:
            items = drain(limit)
            seen.extend(items)
            return items

        runner.drain = counting  # type: ignore[method-assign]
        try:
            self.addon.engine.timer.tick()
        finally:
            del runner.drain
        self.calls_done += sum(1 for item in seen if type(item).__name__ == "CallResult")
        return seen


def _start_python_thread() -> None:
    """Pure Python in a loop on another thread: what any worker does between
    two socket reads, and nothing that touches Blender."""

    def busy() -> None:
        number = 0
        while True:
            entry = {"number": number, "text": str(number)}
            number += len(entry)

    threading.Thread(target=busy, name="stress-python-thread", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.stress", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--zip", help="the built extension zip (default: build one)")
    parser.add_argument("--tasks", type=int, default=40, help="tasks whose status is checked until the end")
    parser.add_argument("--downloads", type=int, default=6,
                        help="downloads kept going (more than the 3 download workers: they never idle)")
    parser.add_argument("--calls", type=int, default=6, help="one-off calls kept in flight")
    parser.add_argument("--no-override", action="store_true", help="call the operators without temp_override")
    parser.add_argument("--python-thread", action="store_true",
                        help="also run a plain Python thread in Blender's process (must crash on Python 3.11)")
    args = parser.parse_args(argv)
    faulthandler.enable(all_threads=True)
    user = throwaway_user_folder("hitem3d-stress-user-")  # before ``import bpy``
    work = Path(tempfile.mkdtemp(prefix="hitem3d-stress-"))
    sys.path.insert(0, str(REPO_ROOT))
    try:
        report = Stress(args, work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(user, ignore_errors=True)
    print(json.dumps(report), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # NOTE: bpy 4.2 as a module crashes at exit once its glTF exporter has run
    # (tests/conftest.py): every result is printed by now.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
