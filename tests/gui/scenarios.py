"""What the real-window tier checks, one function per behaviour, in the order they run.

Each scenario gets a ``Run`` (the chroot, the simulator on the host's loopback,
the current Blender window) and raises ``GuiFailure`` saying what it saw. Input
that a user gives (pasting an ID, pressing a button) is real X input; reading
what Blender shows goes through the agent.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.simulator import API, OWN_PATH, UNSERVED, Fault, Hitem3DSimulator

from .session import INSIDE, Blender, Chroot, GuiFailure

ADDON = "bl_ext.user_default.hitem3d_blender"
GENERATE = "hitem3d.submit_generation"
TEXTURE_SELECTION = "hitem3d.texture_selection"
KIND_PREFIXES = ("split_", "segmentation_", "depth_", "multicolor_")
_ids = itertools.count(1)


def new_task_id(label: str) -> str:
    """A Hitem3D-shaped task ID, unique in the run, that says which scenario made it."""
    return f"{secrets.token_hex(16)}.jjewelry-aigc-api.{label}{next(_ids):03d}"


@dataclass
class Run:
    chroot: Chroot
    sim: Hitem3DSimulator
    blender: Blender | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def window(self) -> Blender:
        """The open window; one is opened when a scenario runs alone (``--only``)."""
        if self.blender is None or not self.blender.alive():
            return self.open_window("tasks")
        return self.blender

    def open_window(self, name: str) -> Blender:
        if self.blender is not None and self.blender.alive():
            self.blender.quit()
        self.blender = Blender(self.chroot, name)
        configure(self.blender, self.sim)
        self.blender.open_hitem3d_tab()
        return self.blender

    def results_dir(self) -> Path:
        return self.chroot.run_dir / "user" / "extensions" / ".user" / "user_default" / "hitem3d_blender" / "results"


def expect(condition: object, message: str) -> None:
    if not condition:
        raise GuiFailure(message)


# -------------------------------------------------------------------------- shared steps


def configure(blender: Blender, sim: Hitem3DSimulator, poll_s: float = 0.5) -> None:
    """Credentials and the simulator's address in the add-on preferences, as a user types them."""
    blender.call(
        f"p = bpy.context.preferences.addons[{ADDON!r}].preferences\n"
        f"p.base_url = {sim.base_url!r}\n"
        f"p.client_id = {sim.client_id!r}\n"
        f"p.client_secret = {sim.client_secret!r}\n"
        f"p.poll_interval = {poll_s}\n"
        "bpy.ops.wm.save_userpref()\n"  # as Blender does on quit: the next start finds them
        "result = bpy.app.online_access"
    )


def task(blender: Blender, task_id: str) -> dict[str, Any] | None:
    for entry in blender.call("result = tasks()"):
        if entry["task_id"] == task_id:
            return dict(entry)
    return None


def watch_states(blender: Blender, task_id: str, until: set[str], timeout: float) -> list[str]:
    """Every state the task shows (consecutive repeats dropped) until one in ``until``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = task(blender, task_id)
        state = entry["state"] if entry else "absent"
        if state != "absent" and (not seen or seen[-1] != state):
            seen.append(state)
        if state in until:
            return seen
        time.sleep(0.05)
    raise GuiFailure(f"task {task_id[-10:]} did not reach {sorted(until)} in {timeout:.0f} s; states seen: {seen}")


def select(blender: Blender, task_id: str) -> None:
    """Make the task the list's active row (what a click on the row does)."""
    blender.call(
        "state = wm_state()\n"
        f"state.active_index = [t.task_id for t in state.tasks].index({task_id!r})\n"
        "redraw_all()"
    )
    time.sleep(0.3)


def press(blender: Blender, operator: str, *, after_y: int = 0) -> None:
    """Find the button by what Ctrl+C over it copies, then click it."""
    x, y = blender.find_in_sidebar(operator, start=max(30, after_y))
    blender.click(x, y)


def paste_and_import(blender: Blender, task_ids: list[str]) -> None:
    """Copy IDs (as from a browser), Ctrl+V over the ID field, click Import: all real input."""
    marker = "gui-probe-field"
    blender.call(f"wm_state().task_id = {marker!r}\nredraw_all()")
    x, y = blender.find_in_sidebar(marker)
    blender.call(f"bpy.context.window_manager.clipboard = {' '.join(task_ids)!r}")
    blender.chroot.xdotool("mousemove", x, y, "sleep", "0.05", "key", "ctrl+v")
    blender.until(f"result = wm_state().task_id == {' '.join(task_ids)!r}", 5, "the pasted ID in the field")
    press(blender, "hitem3d.import_task", after_y=y - blender.call("result = sidebar()")["rect"]["y"])


def start_import(blender: Blender, *task_ids: str) -> None:
    """What Import does for these IDs: the operator, in the window's sidebar context."""
    blender.call(f"with override():\n    bpy.ops.hitem3d.import_task(task_id={' '.join(task_ids)!r})")


@contextmanager
def slow_download(run: Run, label: str, *, size: int = 40_000_000, rate: float = 2_000_000.0) -> Iterator[str]:
    """A task whose model is downloading (throttled) for the duration; yields its ID."""
    task_id = run.sim.add_task(new_task_id(label), ["success"], glb=big_glb(run, size))
    run.sim.file_rate_limit = rate
    try:
        start_import(run.window, task_id)
        watch_states(run.window, task_id, {"downloading"}, 30)
        yield task_id
    finally:
        run.sim.file_rate_limit = None


def keep_picture(run: Run, name: str) -> None:
    """The sidebar as the scenario sees it, kept with the logs (``--keep-logs``) to be looked at."""
    blender = run.window
    blender.chroot.xdotool("mousemove", 1, 1)  # no hover highlight, no tooltip
    time.sleep(0.4)
    shot = blender.chroot.screenshot(name, blender.call("result = sidebar()")["rect"])
    folder = run.chroot.run_dir / "logs" / "pictures"
    folder.mkdir(exist_ok=True)
    shot.replace(folder / f"{name}.png")


def no_partial_files(run: Run) -> None:
    partial = sorted(p.name for p in run.results_dir().glob("*.part")) if run.results_dir().is_dir() else []
    expect(not partial, f"partial downloads left behind: {partial}")


# -------------------------------------------------------------------------- the scenarios


def cli_exit_codes(run: Run) -> None:
    """`blender -b --online-mode --command hitem3d ...`: output and the documented exit codes."""
    good, bad = new_task_id("CliGood"), new_task_id("CliFail")
    run.sim.add_task(good, ["queueing", "success"])
    run.sim.add_task(bad, ["queueing", "failed"])
    # A render farm's way: credentials in the environment, nothing in the preferences.
    env = {"HITEM3D_CLIENT_ID": run.sim.client_id, "HITEM3D_CLIENT_SECRET": run.sim.client_secret}
    out_blend = f"{INSIDE}/home/cli/{good[-10:]}.blend"

    def hitem3d(*args: str, online: bool = True) -> tuple[int, str]:
        # "--factory-startup" first: Blender without add-ons, as on a node without the extension.
        start = ["--factory-startup"] if args[:1] == ("--factory-startup",) else []
        args = args[len(start):]
        cmd = ["blender", "-b", *start, "--online-mode" if online else "--offline-mode", "--command", "hitem3d", *args]
        done = run.chroot.run(cmd, timeout=180, check=False, **env)
        return done.returncode, done.stdout + done.stderr

    cases: list[tuple[tuple[str, ...], bool, int, str]] = [
        (("--help",), True, 0, "import"),
        (("import", good, "--output", out_blend), True, 0, f"{good}: done"),
        (("status", good, "--json"), True, 0, '"state"'),
        (("import", bad), True, 5, bad),
        (("import",), True, 2, "usage"),
        (("import", "../etc/passwd"), True, 2, "Not a task ID"),
        (("status", good), False, 5, "--online-mode"),  # started with --offline-mode
        # No extension: Blender's own 1, which the command never returns for a task.
        (("--factory-startup", "status", good), True, 1, 'Unrecognized command: "hitem3d"'),
    ]
    for args, online, code, text in cases:
        got, output = hitem3d(*args, online=online)
        shown = " ".join(("--online-mode" if online else "(offline)", *args))
        expect(got == code, f"hitem3d {shown}: exit {got}, expected {code}:\n{output[-1500:]}")
        expect(text in output, f"hitem3d {shown}: {text!r} not in the output:\n{output[-1500:]}")
    expect(run.chroot.host_path(out_blend).is_file(), "hitem3d import --output saved no .blend")


def paste_import_and_states(run: Run) -> None:
    """Paste an ID and press Import with real input; the list shows each state on Blender's own timers."""
    blender = run.open_window("tasks")
    task_id = new_task_id("Paste")
    run.sim.add_task(task_id, ["queueing", {"state": "processing", "progress": 30},
                               {"state": "processing", "progress": 70}, "success"], glb=big_glb(run, 20_000_000))
    run.sim.file_rate_limit = 10_000_000.0  # two seconds of download, to see it
    before = blender.call("result = objects()")
    try:
        paste_and_import(blender, [task_id])
        states = watch_states(blender, task_id, {"done", "failed"}, 60)
    finally:
        run.sim.file_rate_limit = None
    expect(states[-1] == "done", f"the import ended {states[-1]}: {task(blender, task_id)}")
    for state in ("queueing", "processing", "downloading"):
        expect(state in states, f"the list never showed {state!r}; it showed {states}")
    after = blender.call("result = objects()")
    expect(len(after) > len(before), "Import finished but no object arrived in the scene")
    run.notes.append(f"paste and import: states {' > '.join(states)}")


def import_again(run: Run) -> None:
    """Import Again (a click) imports the finished task once more, from the cache."""
    blender = run.window
    done = [t["task_id"] for t in blender.call("result = tasks()") if t["state"] == "done"]
    if not done:  # run alone
        done.append(run.sim.add_task(new_task_id("Again"), ["success"]))
        start_import(blender, done[0])
        watch_states(blender, done[0], {"done"}, 30)
    task_id = done[0]
    downloads = run.sim.count("/files/")
    objects = len(blender.call("result = objects()"))
    select(blender, task_id)
    press(blender, f'hitem3d.import_again(task_id="{task_id}")')
    blender.until(f"result = len(objects()) > {objects}", 30, "Import Again's objects")
    expect(run.sim.count("/files/") == downloads, "Import Again downloaded the model again")


def failure_and_retry(run: Run) -> None:
    """A failed generation shows its message and a Retry button; Retry (a click) finishes the task."""
    blender = run.window
    task_id = new_task_id("Fail")
    run.sim.add_task(task_id, ["queueing", "failed"])
    start_import(blender, task_id)
    watch_states(blender, task_id, {"failed"}, 30)
    message = task(blender, task_id)["message"]  # type: ignore[index]
    expect("Generation failed" in message, f"failure message: {message!r}")
    run.sim.add_task(task_id, ["processing", "success"])  # the second attempt works
    select(blender, task_id)
    press(blender, f'hitem3d.retry_task(task_id="{task_id}")')
    states = watch_states(blender, task_id, {"done"}, 30)
    run.notes.append(f"retry: {' > '.join(states)}")


def cancel_download(run: Run) -> None:
    """Cancel (a click) during a download stops it at once and leaves no partial file."""
    blender = run.window
    with slow_download(run, "Cancel", rate=500_000.0) as task_id:  # 80 s: time enough to find the button
        select(blender, task_id)
        press(blender, f'hitem3d.cancel_task(task_id="{task_id}")')
        started = time.monotonic()
        watch_states(blender, task_id, {"cancelled"}, 10)
        expect(time.monotonic() - started < 3, "Cancel took more than 3 s")
    time.sleep(1.0)
    no_partial_files(run)


def new_generation(run: Run) -> None:
    """New Generation: choose a picture, scroll down to Generate and double-click it: nothing moves
    under the mouse, the button greys out while its request is on its way and the second click
    sends nothing; the new task is imported like any other."""
    blender = run.window
    picture = run.chroot.run_dir / "home" / "chair.png"
    picture.write_bytes(tiny_png())
    submitted = len(run.sim.submissions)
    before = {t["task_id"] for t in blender.call("result = tasks()")}
    model = blender.call(f"g = bpy.context.scene.hitem3d_generate\ng.image_path = {INSIDE + '/home/chair.png'!r}\n"
                         "redraw_all()\nresult = g.model")
    x, y = blender.find_in_sidebar(GENERATE, origin="end")
    lit = blender.shade(x, y)
    run.sim.inject(f"{API}/submit-task", Fault.delay(3.0))  # on its way long enough to look at
    blender.chroot.xdotool("mousemove", x, y, "sleep", "0.05", "click", "--repeat", "2", "--delay", "150", "1")
    blender.until("result = bool(submodule('ui.submit_calls').pending_submissions())", 5, "Generate's request")
    # (This probe comes after the second click: X input arrives in order.)
    expect(GENERATE in blender.probe_point(x, y), "the panel moved at the press: Generate left the mouse")
    dim = blender.shade(x, y)
    keep_picture(run, "new-generation-on-its-way")
    # Before the answer: a charge clears the panel's notices.
    notice = blender.call("result = str(submodule('ui.submit_calls').notice('generate'))")
    expect(not notice, f"the second click reached the operator ({notice!r}): Generate was not inactive")
    expect(dim < lit - 0.05, f"Generate does not look inactive while its request is on its way "
                             f"(lightness {lit:.2f} before, {dim:.2f} during)")
    new = blender.until(f"result = [t['task_id'] for t in tasks() if t['task_id'] not in {sorted(before)!r}]", 30,
                        "the generated task in the list")
    expect(len(run.sim.submissions) == submitted + 1,
           f"a double click on Generate sent {len(run.sim.submissions) - submitted} requests")
    sent = run.sim.submissions[-1].fields.get("model")
    expect(sent == model, f"Generate sent model {sent!r}; the panel said {model!r}")
    states = watch_states(blender, new[0], {"done", "failed"}, 60)
    expect(states[-1] == "done", f"the generated task ended {states[-1]}")


def waiting_for_a_free_slot(run: Run) -> None:
    """With one task at once allowed and one running, Generate's request waits in a row that says
    so, beside a Cancel (a click) that sends nothing; pressed again, it goes by itself when the
    running task ends."""
    blender = run.window
    busy = run.sim.add_task(new_task_id("Busy"), [{"state": "processing", "progress": 40}] * 10_000)
    start_import(blender, busy)
    watch_states(blender, busy, {"processing"}, 30)
    (run.chroot.run_dir / "home" / "chair.png").write_bytes(tiny_png())
    blender.call(f"bpy.context.preferences.addons[{ADDON!r}].preferences.max_running_tasks = 1\n"
                 f"bpy.context.scene.hitem3d_generate.image_path = {INSIDE + '/home/chair.png'!r}")
    submitted = len(run.sim.submissions)
    waiting = ("c = submodule('ui.submit_calls')\n"
               "result = [str(c.line_of(p)) for p in c.pending_submissions() if c.stage_of(p.key).value == 'slot']")
    try:
        x, y = blender.find_in_sidebar(GENERATE, origin="end")
        blender.click(x, y)
        line = blender.until(waiting, 10, "Generate's request waiting for a free slot")[0]
        expect(line.startswith("Waiting for a free slot (1 of 1 tasks running on Hitem3D)"), f"the row says {line!r}")
        keep_picture(run, "waiting-for-a-free-slot")
        # Under Generate and its estimate, where the artist looks after pressing it.
        blender.click(*blender.find_near("hitem3d.cancel_send", y + 60, reach=60, x_fraction=0.83))
        blender.until("result = not submodule('ui.submit_calls').pending_submissions()", 5, "the row to go")
        expect(len(run.sim.submissions) == submitted, "Cancel on a waiting request sent it")
        blender.click(*blender.find_near(GENERATE, y))
        blender.until(waiting, 10, "Generate's request waiting again")
        before = {t["task_id"] for t in blender.call("result = tasks()")}
        run.sim.add_task(busy, ["success"])  # the running task ends: its slot is free
        new = blender.until(f"result = [t['task_id'] for t in tasks() if t['task_id'] not in {sorted(before)!r}]",
                            30, "the waiting request to leave once the running task ended")
        expect(len(run.sim.submissions) == submitted + 1, "the waiting request did not leave once")
        expect(run.sim.running_at_create[-1] == 0, f"it left while {run.sim.running_at_create[-1]} tasks ran")
        watch_states(blender, new[0], {"done"}, 60)
    finally:
        blender.call(f"bpy.context.preferences.addons[{ADDON!r}].preferences.max_running_tasks = 10")


def parts_not_followed_and_retry(run: Run) -> None:
    """Parts and Colours, opened by a click on its header: Split (a click) on the finished task
    makes a task no published path follows; its row says Not followed, its details keep the ID
    and offer Retry, and Retry (a click) follows it once a path answers."""
    blender = run.window
    done = [t["task_id"] for t in blender.call("result = tasks()")
            if t["state"] == "done" and not t["task_id"].startswith(KIND_PREFIXES)]
    if not done:  # run alone
        done.append(run.sim.add_task(new_task_id("Parts"), ["success"]))
        start_import(blender, done[0])
        watch_states(blender, done[0], {"done"}, 30)
    select(blender, done[0])
    before = {t["task_id"] for t in blender.call("result = tasks()")}
    run.sim.query_routes["split"] = UNSERVED
    try:
        blender.open_closed_subpanel(2)  # Parts and Colours, above Relief
        x, y = blender.find_in_sidebar("hitem3d.split_parts", origin="here")
        keep_picture(run, "parts-and-colours")
        blender.click(x, y)
        new = blender.until(f"result = [t['task_id'] for t in tasks() if t['task_id'] not in {sorted(before)!r}]",
                            30, "the split task in the list")[0]
        states = watch_states(blender, new, {"unfollowed", "done", "failed"}, 30)
        expect(new.startswith("split_") and states[-1] == "unfollowed", f"the split {new} ended {states}")
        message = task(blender, new)["message"]  # type: ignore[index]
        expect(message.startswith("Created on Hitem3D: this version cannot follow it yet"), f"it says {message!r}")
        select(blender, new)
        blender.sidebar_home()
        keep_picture(run, "not-followed")
        run.sim.query_routes["split"] = OWN_PATH  # an update, or Hitem3D publishing the path
        press(blender, f'hitem3d.retry_task(task_id="{new}")')
        states = watch_states(blender, new, {"done", "failed"}, 30)
        expect(states[-1] == "done", f"after Retry the split ended {states}")
        run.notes.append(f"parts: split {' > '.join(states)} after Retry")
    finally:
        run.sim.query_routes["split"] = OWN_PATH


def test_connection(run: Run) -> None:
    """Preferences > Add-ons > Hitem3D > Test Connection (a click) says the key was accepted, then what is wrong."""
    blender = run.window
    rect = blender.open_preferences()
    try:
        button = blender.find_button(rect, "hitem3d.test_connection", start=200)
        answered = ("s = submodule('ui.connection').connection_status()\n"
                    "result = s and not str(s.text).endswith('…') and [s.ok, str(s.text)]")
        blender.click(*button)
        status = blender.until(answered, 20, "the connection status")
        expect(status[0] and "Connected" in status[1], f"Test Connection said {status}")
        blender.call(f"bpy.context.preferences.addons[{ADDON!r}].preferences.client_secret = 'wrong'")
        blender.click(*button)
        status = blender.until(answered.replace("and [s.ok", "and not s.ok and [s.ok"), 20, "the connection status")
        expect("rejected" in status[1], f"Test Connection with a wrong secret said {status}")
    finally:
        blender.close_preferences()
        configure(blender, run.sim)


def chinese_interface(run: Run) -> None:
    """With the interface in Simplified Chinese, every string of ours shows our words."""
    blender = run.window
    wrong = blender.call(
        "prefs = bpy.context.preferences.view\n"
        "prefs.language = 'zh_HANS'\n"
        "prefs.use_translate_interface = True\n"
        "prefs.use_translate_tooltips = True\n"
        "prefs.use_translate_reports = True\n"
        "tr = submodule('i18n.translations')\n"
        "from bpy.app import translations as bt\n"
        "result = []\n"
        "for (ctxt, msgid), ours in sorted(tr.catalogue().items()):\n"
        "    shown = bt.pgettext(msgid, ctxt)\n"
        "    if shown != ours:\n"
        "        result.append([ctxt, msgid, shown, ours])\n"
    )
    count = blender.call("result = len(submodule('i18n.translations').catalogue())")
    try:
        expect(not wrong, f"{len(wrong)} of our {count} Chinese strings do not show: "
               + "; ".join(f"{msgid!r} ({ctxt}) shows {shown!r}, not {ours!r}" for ctxt, msgid, shown, ours in wrong))
    finally:
        blender.call("bpy.context.preferences.view.language = 'en_US'")
    run.notes.append(f"Chinese: all {count} strings show ours")


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


def disable_mid_download(run: Run) -> None:
    """Disabling the add-on during a download ends its worker process within a second; no thread
    of ours runs in Blender's process meanwhile (docs/threads-in-blender.md), but the converter
    starter where Blender's Python (3.12 or newer) makes a thread safe, which the disable ends."""
    blender = run.open_window("disable")
    baseline = blender.call("result = threads()")
    safe = blender.call(f"import sys\nresult = sys.modules[{ADDON!r} + '.engine.conversions'].THREADS_ARE_SAFE")
    allowed = {"hitem3d-converter-starter"} if safe else set()
    with slow_download(run, "Disable") as task_id:
        pid = blender.call("result = worker_pid()")
        expect(pid is not None and _alive(pid), "no worker process during the download")
        during = blender.call("result = threads()")
        expect(set(during) - set(baseline) <= allowed,
               f"threads in Blender's process during the download: {during} (Python 3.12 or newer: {safe})")
        blender.call(f"import addon_utils\naddon_utils.disable({ADDON!r}, default_set=True)")
        started = time.monotonic()
        blender.wait_for(lambda: not _alive(pid), 5, "the worker process to end")
        expect(time.monotonic() - started < 1.5, "the worker process outlived the disable by more than a second")
        expect(blender.call("result = threads()") == baseline,
               f"threads left in Blender's process after the disable: {blender.call('result = threads()')}")
    no_partial_files(run)
    blender.call(f"import addon_utils\naddon_utils.enable({ADDON!r}, default_set=True)")
    configure(blender, run.sim)
    states = watch_states(blender, task_id, {"done", "failed"}, 60)
    expect(states[-1] == "done", f"after enabling again the task ended {states[-1]}")


def quit_mid_download(run: Run) -> None:
    """Quitting during a download: Blender exits at once, cleanly; the task resumes next start."""
    blender = run.open_window("quit")
    with slow_download(run, "Quit") as task_id:
        started = time.monotonic()
        code = blender.quit(timeout=15)
        took = time.monotonic() - started
    expect(code == 0, f"Blender exited with {code} after quitting mid-download:\n{blender.log_text()[-2000:]}")
    expect(took < 10, f"quitting took {took:.1f} s")
    expect("Traceback" not in blender.log_text(), f"a traceback on quit:\n{blender.log_text()[-3000:]}")
    no_partial_files(run)
    blender = run.open_window("resume")
    states = watch_states(blender, task_id, {"done", "failed"}, 90)
    expect(states[-1] == "done", f"the task did not resume to done: {states}")
    run.notes.append(f"quit mid-download: exit 0 in {took:.1f} s; resumed: {' > '.join(states)}")


def pictures_in_and_texture_selection(run: Run) -> None:
    """Use Current View draws the viewport into the picture (the GPU path the bpy module cannot
    take), a picture drop target is registered for the 3D Viewport, and Texture Selection (a
    click, below the statement of what it uploads and where) sends the selected cube and places
    the textured result beside it."""
    blender = run.window
    drop = blender.call(
        "h = getattr(bpy.types, 'HITEM3D_FH_picture', None)\n"
        "area, region = view3d()\n"
        "with ctx().temp_override(window=window(), area=area, region=region):\n"
        "    ok = bool(h and h.poll_drop(bpy.context))\n"
        "result = [h is not None, ok, h.bl_file_extensions if h else '']"
    )
    expect(drop[0] and drop[1], f"no picture drop target for the 3D Viewport: {drop}")
    picture = blender.call(
        "bpy.context.scene.hitem3d_generate.model = 'hitem3dv1.5'\n"
        "with override():\n"
        "    bpy.ops.hitem3d.use_current_view(view='VIEWPORT')\n"
        "import pathlib\n"
        "p = pathlib.Path(bpy.context.scene.hitem3d_generate.image_path)\n"
        "result = [str(p), p.is_file() and p.read_bytes()[:8] == b'\\x89PNG\\r\\n\\x1a\\n',"
        " p.stat().st_size if p.is_file() else 0]"
    )
    expect(picture[1] and picture[2] > 1000, f"Use Current View made no picture of the viewport: {picture}")
    submitted = len(run.sim.submissions)
    before = {t["task_id"] for t in blender.call("result = tasks()")}
    blender.call(
        # The mesh goes to the simulator's storage, never to Hitem3D's.
        f"import os\nos.environ.update({run.sim.upload_environment()!r})\n"
        "bpy.ops.object.select_all(action='DESELECT')\n"
        "with override():\n"
        "    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(0.0, 0.0, 1.0))\n"
        "bpy.context.active_object.name = 'Stool'\n"
        "redraw_all()"
    )
    button = blender.find_in_sidebar(TEXTURE_SELECTION, origin="end")
    keep_picture(run, "texture-selection")
    blender.click(*button)
    # The list's order is the sidebar's (newest first): find the new task by its ID.
    new = blender.until(f"result = [t['task_id'] for t in tasks() if t['task_id'] not in {sorted(before)!r}]", 30,
                        "the texturing task in the list")
    watch_states(blender, new[0], {"done", "failed"}, 90)
    expect(len(run.sim.submissions) == submitted + 1, "Texture Selection sent no request (or more than one)")
    sent = run.sim.submissions[-1]
    expect(sent.fields.get("request_type") == "2"
           and any(sent.fields.get("mesh_url") == run.sim.public_base + key for key in run.sim.stored),
           f"Texture Selection did not upload a mesh to texture: {sent.fields}")
    placed = blender.call(
        "o = bpy.data.objects.get('Stool textured')\n"
        "result = o and [round(v, 3) for v in o.matrix_world.translation]"
    )
    expect(placed and placed[0] > 2.0, f"the textured result is not beside the original: {placed}")
    run.notes.append(f"pictures in: drop target for {drop[2]}; viewport picture {picture[2]} bytes; "
                     f"'Stool textured' at {placed}")


SCENARIOS: tuple[Callable[[Run], None], ...] = (
    cli_exit_codes,
    paste_import_and_states,
    import_again,
    failure_and_retry,
    cancel_download,
    new_generation,
    waiting_for_a_free_slot,
    pictures_in_and_texture_selection,
    parts_not_followed_and_retry,  # leaves Parts and Colours open: the sidebar's end is far after it
    test_connection,
    chinese_interface,
    disable_mid_download,
    quit_mid_download,
)


# -------------------------------------------------------------------------- assets


def big_glb(run: Run, size: int) -> Path:
    """A real model padded to ``size`` bytes: slow to download, quick to import."""
    from benchmarks.assets import padded_glb
    from tests.support.glb_factory import cached_glb

    return padded_glb(cached_glb(), size)


def tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + bytes([200, 120, 40]) * 64 for _ in range(64))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

