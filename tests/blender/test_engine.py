"""The engine in real Blender: the defects of the old bridge stay fixed, a paste
costs one journal save, and redraws reach only what shows Hitem3D state."""

from __future__ import annotations

import os
import random
import threading
import time
from types import ModuleType, SimpleNamespace
from typing import Any, Iterator

import bpy
import pytest

from tests.support.blender_helpers import OTHER_ID, TASK_ID, glb_downloads, import_error, imported_objects, record_of, \
    run_ticks, threads_running_addon_code
from tests.support.simulator import Fault, Hitem3DSimulator


@pytest.fixture
def interactive(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Operators return at once, as in Blender's UI; tests drive the timer."""
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    return addon


@pytest.fixture
def click_to_import(prefs: Any) -> Iterator[Any]:
    prefs.auto_import = False
    yield prefs
    prefs.auto_import = True


# -- the defects -----------------------------------------------------------------------------------


def test_a_result_queued_as_the_last_job_ends_is_not_stranded(interactive: ModuleType, prefs: Any,
                                                              sim: Hitem3DSimulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[Any] = []
    monkeypatch.setattr(interactive.engine.state.hooks, "call_done", delivered.append)
    sim.inject("/open-api/v1/balance", Fault.delay(0.3))
    settings = interactive.ui.preferences.usable_settings()
    interactive.engine.control.start_call("late", settings, interactive.core.calls.balance())
    runner = interactive.engine.state.runner()
    drain = runner.drain

    def drain_then_wait(limit: int = 1000) -> list[Any]:
        # The call answers and ends right after this drain, before the timer
        # asks whether anything is still running.
        items = drain(limit)
        time.sleep(0.05)
        return items

    monkeypatch.setattr(runner, "drain", drain_then_wait)
    deadline = time.monotonic() + 10
    while not delivered and time.monotonic() < deadline:
        assert interactive.engine.timer.tick() is not None  # the timer goes on for the result
    assert [result.value for result in delivered] == [1000.0]


def test_a_task_removed_and_pasted_again_gets_only_its_own_updates(interactive: ModuleType, prefs: Any,
                                                                   sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["processing", "processing", "processing", "success"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "processing")
    bpy.ops.hitem3d.remove_task(task_id=TASK_ID)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)  # before the first run has ended
    rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "done", str(rec.message)
    assert imported_objects()


def test_a_settings_error_leaves_running_tasks_running(interactive: ModuleType, prefs: Any,
                                                       sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["processing", "processing", "success"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "processing")
    bpy.context.preferences.system.use_online_access = False
    assert "Online access is off" in import_error(f"{TASK_ID} {OTHER_ID}")
    assert record_of(interactive, OTHER_ID).state.value == "failed"
    bpy.context.preferences.system.use_online_access = True
    rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "done", str(rec.message)
    assert imported_objects()


def test_import_after_clear_cache_downloads_the_model_again(interactive: ModuleType, click_to_import: Any,
                                                            sim: Hitem3DSimulator) -> None:
    sim.add_task(TASK_ID, ["success"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    # Downloaded, and its job's end applied too (a call applies few results:
    # Clear Cache keeps the file of a task whose job has not ended yet).
    run_ticks(interactive, TASK_ID, until=lambda rec: rec.state.value == "downloaded"
              and not interactive.engine.state.is_running(TASK_ID))
    bpy.ops.hitem3d.clear_cache()
    assert bpy.ops.hitem3d.import_again(task_id=TASK_ID) == {"FINISHED"}
    rec = run_ticks(interactive, TASK_ID)
    assert rec.state.value == "done", str(rec.message)
    assert imported_objects() and glb_downloads(sim) == 2


def test_no_python_thread_of_ours_runs_in_blenders_process(interactive: ModuleType, click_to_import: Any,
                                                           sim: Hitem3DSimulator) -> None:
    """Status checks, downloads, calls and journal writes run in the worker
    process: with Python 3.11 any Python thread in Blender's process can crash
    it inside an operator (docs/threads-in-blender.md)."""
    ids = [f"{n:032x}.jjewelry-aigc-api.Thread{n:05d}" for n in range(8)]
    for task_id in ids[:4]:
        sim.add_task(task_id, ["processing"])
    for task_id in ids[4:]:
        sim.add_task(task_id, ["processing", "success"])
    sim.file_rate_limit = 200_000  # downloads under way for a while
    bpy.ops.hitem3d.import_task(task_id=" ".join(ids))
    interactive.ui.submit_calls.refresh_balance(interactive.ui.preferences.usable_settings())
    runner = interactive.engine.state.runner()
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        interactive.engine.timer.tick()
        seen += threads_running_addon_code(interactive)
        states = {record_of(interactive, task_id).state.value for task_id in ids[4:]}
        if states == {"downloaded"}:
            break
        time.sleep(0.02)
    assert states == {"downloaded"}
    assert seen == []
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("hitem3d-")
                and thread.name != "hitem3d-simulator"]
    # The workers are a child process of Blender's, running while tasks do.
    assert runner.pid is not None and runner.pid != os.getpid()
    os.kill(runner.pid, 0)


# -- cost ------------------------------------------------------------------------------------------


def test_pasting_many_ids_saves_the_journal_once(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"{n:032x}.jjewelry-aigc-api.Paste{n:05d}" for n in range(60)]
    for task_id in ids:
        sim.add_task(task_id, ["processing"])
    takes: list[bool] = []
    posts: list[int] = []
    journal = interactive.core.journal
    take, post = journal.Changes.take, journal.JournalFile.post
    monkeypatch.setattr(journal.Changes, "take", lambda self, *args: takes.append(True) or take(self, *args))
    monkeypatch.setattr(journal.JournalFile, "post",
                        lambda self, order, entries: posts.append(len(entries)) or post(self, order, entries))
    bpy.ops.hitem3d.import_task(task_id=" ".join(ids))
    assert takes == []  # the paste itself saves nothing
    for _ in range(10):
        interactive.engine.timer.tick()
        if not interactive.engine.state.current.journal_dirty:
            break
    # One save for the burst, spread over as few timer calls as keep each one short.
    per_call = interactive.engine.history.MAX_FRESH_PER_SAVE
    assert len(takes) == -(-60 // per_call)
    assert posts == [60]
    assert interactive.engine.state.runner().flush_writes(5.0)  # written off the main thread
    saved = interactive.core.journal.load(interactive.engine.files.journal_path()).records
    assert {rec.task_id for rec in saved} == set(ids)


def test_a_burst_of_results_is_applied_over_several_calls(interactive: ModuleType,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve tasks cancelled at once: no timer call applies more than its
    share, and each call asks to be called again soon while results wait."""
    tasks, timer = interactive.core.tasks, interactive.engine.timer
    ids = [f"{n:032x}.jjewelry-aigc-api.Burst{n:05d}" for n in range(12)]
    for task_id in ids:
        interactive.engine.history.book().add(task_id)
    waiting = [tasks.TaskUpdate(task_id, tasks.TaskState.CANCELLED) for task_id in ids]
    runner = interactive.engine.state.runner()

    def drain(limit: int = 1000) -> list[Any]:
        taken, waiting[:] = waiting[:limit], waiting[limit:]
        return taken

    monkeypatch.setattr(runner, "drain", drain)
    monkeypatch.setattr(type(runner), "busy", property(lambda self: bool(waiting)))
    per_call = timer.RESULTS_PER_CALL
    expected = [min(per_call, len(ids) - start) for start in range(0, len(ids), per_call)]
    assert len(expected) > 1
    applied: list[int] = []
    for _ in expected:
        before = sum(1 for task_id in ids if record_of(interactive, task_id).state.is_terminal)
        interval = timer.tick()
        applied.append(sum(1 for task_id in ids if record_of(interactive, task_id).state.is_terminal) - before)
        assert interval == timer.BUSY_INTERVAL_S
    assert applied == expected


def test_a_poll_that_changes_nothing_shown_asks_for_no_redraw(addon: ModuleType) -> None:
    update = addon.core.tasks.TaskUpdate
    processing = addon.core.tasks.TaskState.PROCESSING
    addon.engine.history.book().add(TASK_ID)
    assert addon.engine.timer.apply_update(update(TASK_ID, processing, progress=0.4))
    assert not addon.engine.timer.apply_update(update(TASK_ID, processing, progress=0.4))
    assert addon.engine.timer.apply_update(update(TASK_ID, processing, progress=0.5))


def _history(addon: ModuleType, count: int) -> list[str]:
    """``count`` finished tasks in the book, as weeks of use leave them."""
    book = addon.engine.history.book()
    ids = [f"{n:032x}.jjewelry-aigc-api.Done{n:05d}" for n in range(count)]
    for task_id in ids:
        book.put(addon.core.tasks.TaskRecord(task_id, state=addon.core.tasks.TaskState.DONE))
    return ids


def test_a_timer_call_never_walks_the_history(interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    history = _history(interactive, 300)
    sim.add_task(TASK_ID, ["queueing", "processing", "processing", "processing", "failed"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    for _ in range(20):  # the list and the journal take the history in once
        interactive.engine.timer.tick()
        if not interactive.engine.state.current.journal_dirty:
            break
    assert interactive.engine.state.runner().flush_writes(5.0)
    walked: list[str] = []
    converted: list[str] = []
    book_type, record_type = interactive.core.tasks.TaskBook, interactive.core.tasks.TaskRecord
    for name in ("__iter__", "oldest_first", "active"):
        original = getattr(book_type, name)
        monkeypatch.setattr(book_type, name, lambda self, _o=original, _n=name: walked.append(_n) or _o(self))
    to_dict = record_type.to_dict
    monkeypatch.setattr(record_type, "to_dict", lambda self: converted.append(self.task_id) or to_dict(self))

    rec = run_ticks(interactive, TASK_ID)

    assert rec.state.value == "failed"
    assert walked == []
    assert converted and set(converted) == {TASK_ID}  # the journal encodes the task that changed, not the history
    assert interactive.engine.state.runner().flush_writes(5.0)
    saved = interactive.core.journal.load(interactive.engine.files.journal_path()).records
    assert [r.task_id for r in saved] == history + [TASK_ID] and saved[-1].state.value == "failed"


def test_the_list_keeps_no_more_finished_tasks_than_the_journal(interactive: ModuleType, prefs: Any,
                                                               sim: Hitem3DSimulator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interactive.core.journal, "MAX_ENTRIES", 5)
    history = _history(interactive, 5)
    sim.add_task(TASK_ID, ["failed"])
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    rec = run_ticks(interactive, TASK_ID)
    interactive.engine.timer.tick()
    assert rec.state.value == "failed"
    shown = [item.task_id for item in bpy.context.window_manager.hitem3d.tasks]
    assert shown == [TASK_ID] + history[:0:-1]  # the oldest finished task left the list


def test_appends_take_turns(interactive: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two models converted at once: each timer call appends what fits its
    budget (one big model), and leaves the rest for the next call."""
    timer = interactive.engine.timer
    waiting = [(TASK_ID, object()), (OTHER_ID, object())]
    appended: list[list[str]] = []

    def append(task_id: str, outcome: Any) -> None:
        time.sleep(timer.IMPORT_BUDGET_S)  # an append of a big model takes longer than the budget
        appended[-1].append(task_id)
        waiting[:] = [pair for pair in waiting if pair[0] != task_id]

    monkeypatch.setattr(interactive.engine.conversions, "finished", lambda: list(waiting))
    monkeypatch.setattr(interactive.engine.import_step, "finish_conversion", append)
    for _ in range(3):
        appended.append([])
        interval = timer.tick()
        assert interval == timer.BUSY_INTERVAL_S or not waiting
    assert appended == [[TASK_ID], [OTHER_ID], []]


def test_the_list_mirror_changes_only_what_moved(addon: ModuleType) -> None:
    class Collection:
        """Stands in for the window manager's RNA list and counts the steps."""

        def __init__(self, ids: list[str]) -> None:
            self.items = [SimpleNamespace(task_id=task_id) for task_id in ids]
            self.steps: list[str] = []

        def add(self) -> Any:
            self.steps.append("add")
            self.items.append(SimpleNamespace(task_id=""))
            return self.items[-1]

        def remove(self, index: int) -> None:
            self.steps.append("remove")
            del self.items[index]

        def move(self, source: int, target: int) -> None:
            self.steps.append("move")
            self.items.insert(target, self.items.pop(source))

    old = [f"task-{n:03d}" for n in range(500)]
    cases = {
        "paste of two": (["new-1", "new-2"] + old, ["add", "move", "add", "move"]),
        "a task removed": (old[:200] + old[201:], ["remove"]),
        "the oldest left": (old[:-3], ["remove"] * 3),
        "a retry brings an old task to the top": ([old[400]] + old[:400] + old[401:], ["move"]),
        "nothing": (old, []),
    }
    for case, (wanted, steps) in cases.items():
        tasks, mirror = Collection(old), list(old)
        addon.ui.ui_sync._edit(tasks, mirror, wanted)
        assert [item.task_id for item in tasks.items] == wanted == mirror, case
        assert tasks.steps == steps, case
    # Following the book's moves costs what moved: a finished task pushing
    # the oldest out of a full history is one step each, the rest untouched.
    moves_cases = {
        "a new task, the oldest out": ([("new-1", True), (old[-1], False)], ["add", "move", "remove"]),
        "a retry": ([(old[400], True)], ["move"]),
        "a paste, newest last": ([("new-1", True), ("new-2", True)], ["add", "move", "add", "move"]),
        "gone before it was seen": ([("new-1", True), ("new-1", False)], ["add", "move", "remove"]),
        "a move of a task already gone": ([(old[0], False), (old[0], False)], ["remove"]),
    }
    for case, (moves, steps) in moves_cases.items():
        book = addon.core.tasks.TaskBook()
        for task_id in reversed(old):
            book.add(task_id)
        book.take_moves("test")
        for task_id, last in moves:
            book.add(task_id) if last else book.remove(task_id)
        tasks, mirror = Collection(old), list(old)
        addon.ui.ui_sync._follow(tasks, mirror, moves)
        assert [item.task_id for item in tasks.items] == mirror == book.ids_newest_first(), case
        assert tasks.steps == steps, case


def test_the_list_follows_the_book_and_keeps_the_selection(addon: ModuleType) -> None:
    book, ui_sync = addon.engine.history.book(), addon.ui.ui_sync
    holder = bpy.context.window_manager.hitem3d
    history = _history(addon, 20)
    ui_sync.sync_list()
    ui_sync.select(history[5])
    book.add("new-task")
    book.remove(history[10])
    book.bring_to_top([history[2]])
    ui_sync.sync_list()
    assert [item.task_id for item in holder.tasks] == book.ids_newest_first()
    assert holder.tasks[holder.active_index].task_id == history[5]
    holder.tasks.clear()  # changed behind our back (another file's window manager)
    ui_sync.sync_list()
    assert [item.task_id for item in holder.tasks] == book.ids_newest_first()
    # Many steps between two looks, each followed in turn; then more than the list holds.
    rng = random.Random(7)
    for round_ in range(40):
        for _ in range(rng.randrange(1, 6)):
            ids = book.ids_oldest_first()
            step = rng.randrange(4)
            if step == 0:
                book.add(f"round-{round_}-{rng.randrange(10**6)}")
            elif step == 1 and ids:
                book.remove(rng.choice(ids))
            elif step == 2 and ids:
                book.bring_to_top(rng.sample(ids, min(3, len(ids))))
            else:
                book.trim(10)
        ui_sync.sync_list()
        assert [item.task_id for item in holder.tasks] == book.ids_newest_first(), round_
    for _ in range(200):
        book.bring_to_top([book.ids_oldest_first()[0]])
    ui_sync.sync_list()
    assert [item.task_id for item in holder.tasks] == book.ids_newest_first()


# -- redraws ---------------------------------------------------------------------------------------


@pytest.fixture
def view3d() -> Iterator[Any]:
    """The 3D view of Blender's startup screen, its sidebar closed afterwards."""
    window = bpy.context.window_manager.windows[0]
    area = next(area for area in window.screen.areas if area.type == "VIEW_3D")
    yield area
    area.spaces.active.show_region_ui = False


def test_redraws_reach_the_sidebar_of_a_3d_view_only_when_it_is_open(addon: ModuleType, view3d: Any) -> None:
    windows = bpy.context.window_manager.windows
    view3d.spaces.active.show_region_ui = False
    assert addon.ui.ui_sync.regions_showing_hitem3d(windows, "INTERFACE") == []
    view3d.spaces.active.show_region_ui = True
    regions = addon.ui.ui_sync.regions_showing_hitem3d(windows, "INTERFACE")
    # The sidebar (UI), never the viewport itself (WINDOW), nor any other editor.
    assert [(region.type, region.as_pointer()) for region in regions] == [
        ("UI", next(r for r in view3d.regions if r.type == "UI").as_pointer())]


def _area(kind: str, *regions: Any, sidebar: bool = True) -> Any:
    return SimpleNamespace(type=kind, regions=list(regions), spaces=SimpleNamespace(
        active=SimpleNamespace(show_region_ui=sidebar)))


def _region(kind: str, category: str = "") -> Any:
    return SimpleNamespace(type=kind, active_panel_category=category)


def test_redraws_skip_a_sidebar_open_on_another_tab_and_reach_the_add_on_preferences(addon: ModuleType) -> None:
    ours, tool, main = _region("UI", "Hitem3D"), _region("UI", "Tool"), _region("WINDOW")
    prefs_window = _region("WINDOW")
    screen = SimpleNamespace(areas=[_area("VIEW_3D", tool, main), _area("VIEW_3D", ours, _region("WINDOW")),
                                    _area("PREFERENCES", prefs_window)])
    windows = [SimpleNamespace(screen=screen)]
    assert addon.ui.ui_sync.regions_showing_hitem3d(windows, "ADDONS") == [ours, prefs_window]
    assert addon.ui.ui_sync.regions_showing_hitem3d(windows, "KEYMAP") == [ours]


def test_redraws_come_at_most_twice_a_second(addon: ModuleType, view3d: Any) -> None:
    view3d.spaces.active.show_region_ui = True
    ui_sync = addon.ui.ui_sync
    start = time.monotonic() + 1000.0
    assert ui_sync.redraw(now=start)
    assert ui_sync.redraw(now=start + 0.3) == []  # too soon: it waits for the rest of the interval
    assert bpy.app.timers.is_registered(ui_sync._deferred_redraw)
    assert ui_sync.redraw(now=start + 0.51)


def test_a_redraw_blender_made_itself_counts_against_the_rate(addon: ModuleType, view3d: Any) -> None:
    view3d.spaces.active.show_region_ui = True
    ui_sync = addon.ui.ui_sync
    sidebar = next(region for region in view3d.regions if region.type == "UI")
    ui_sync.begin_draw(sidebar)  # the mouse moved over the sidebar, say: it shows the state of now
    assert ui_sync.redraw(now=time.monotonic() + 0.1) == []
    assert bpy.app.timers.is_registered(ui_sync._deferred_redraw)


def test_a_row_is_redrawn_only_when_what_it_shows_changes(addon: ModuleType, view3d: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    view3d.spaces.active.show_region_ui = True
    ui_sync, panels = addon.ui.ui_sync, addon.ui.panels
    sidebar = next(region for region in view3d.regions if region.type == "UI")
    rec = addon.engine.history.book().add(TASK_ID)
    rec.move_to(addon.core.tasks.TaskState.PROCESSING)
    rec.progress = 0.40
    rec.started_at = time.time() - 30.2
    clock = time.monotonic() + 1000.0

    def drawn() -> None:
        ui_sync.begin_draw(sidebar)
        ui_sync.showing(sidebar, TASK_ID, panels.row_texts, panels.row_texts(rec))

    drawn()
    rec.progress = 0.403  # still "40%"
    assert ui_sync.refresh(now=clock) == []
    rec.progress = 0.45
    assert [region.as_pointer() for region in ui_sync.refresh(now=clock)] == [sidebar.as_pointer()]
    rec.progress = 0.5
    assert ui_sync.refresh(now=clock + 1) == []  # no draw came after the last one: the panel is not shown
    drawn()
    real_time = time.time
    with monkeypatch.context() as later:
        later.setattr(time, "time", lambda: real_time() + 1.0)  # "30s" becomes "31s"...
        assert ui_sync.refresh(now=clock + 0.8) == []  # ...less than a second after the last redraw
        assert ui_sync.refresh(now=clock + 2)
    rec.move_to(addon.core.tasks.TaskState.FAILED)
    drawn()
    with monkeypatch.context() as later:
        later.setattr(time, "time", lambda: real_time() + 100.0)  # a finished task's time stands still
        assert ui_sync.refresh(now=clock + 3) == []
    addon.engine.history.book().add(OTHER_ID).progress = 0.9  # a row not drawn (scrolled away, say)
    assert ui_sync.refresh(now=clock + 4) == []


# -- the log file never lengthens a busy timer call ----------------------------------------------


def test_a_busy_timer_calls_log_lines_reach_the_file_by_the_timers_end_and_diagnostics(
        interactive: ModuleType, prefs: Any, sim: Hitem3DSimulator, sample_glb: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log_path = interactive.ui.diagnostics.log_path()
    timer, hooks = interactive.engine.timer, interactive.engine.state.hooks
    monkeypatch.setattr(timer, "LOG_BUDGET_S", 0.0)  # every call busy: its lines wait
    shown_changed, logged = hooks.shown_changed, []

    def log_once() -> None:
        if not logged and any(handler.holding for handler in interactive.core.logs._FILES):  # in a timer call
            interactive.log.info("probe line of call %d", len(logged) + 1)
            logged.append(True)
        shown_changed()

    monkeypatch.setattr(hooks, "shown_changed", log_once)
    interactive.log.info("probe line outside a call")
    assert "probe line outside a call" in log_path.read_text(encoding="utf-8")  # written at once
    sim.add_task(TASK_ID, ["processing", "processing", "success"], glb=sample_glb)
    bpy.ops.hitem3d.import_task(task_id=TASK_ID)
    while not logged:
        assert timer.tick() is not None
    assert "probe line of call 1" not in log_path.read_text(encoding="utf-8")  # held: the call was busy
    interactive.ui.diagnostics.report(bpy.context)
    assert "probe line of call 1" in log_path.read_text(encoding="utf-8")  # Copy Diagnostics names a whole file

    logged.clear()
    while not logged:
        assert timer.tick() is not None
    assert log_path.read_text(encoding="utf-8").count("probe line of call 1") == 1  # the second one waits
    assert run_ticks(interactive, TASK_ID).state.value == "done"
    deadline = time.monotonic() + 10
    while timer.tick() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(handler.held for handler in interactive.core.logs._FILES) == 0  # the timer's last call wrote them
    assert log_path.read_text(encoding="utf-8").count("probe line of call 1") == 2


# -- background mode -------------------------------------------------------------------------------


def test_background_mode_gives_operators_no_window_override_though_the_module_lists_a_window(
        addon: ModuleType) -> None:
    """An override makes Blender 4.2 to 5.0 read context members through Python, unsafe while
    another Python thread runs (docs/threads-in-blender.md); the bpy module lists one window."""
    assert bpy.app.background and len(bpy.context.window_manager.windows) >= 1
    assert addon.scene.importer.window_override() == {}
