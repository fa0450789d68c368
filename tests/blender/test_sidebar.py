"""The sidebar reads well at its default width.

Wrapping, names and times are plain functions, tested with any measure. What
the panels draw is checked in real Blender (the ``bpy`` module) with a layout
that stands in for ``UILayout`` and knows how wide each part is: every text is
measured with Blender's own font and must fit where it is drawn.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import bpy
import pytest

from hitem3d_blender.core.tasks import TaskRecord, TaskState
from tests.support.blender_helpers import TASK_ID

S = TaskState
BOX = 10.0  # what a box takes of its layout's width, both sides


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- helpers the drawing tests share with tests/core/test_display.py -------------------------


def generation(**fields: Any) -> dict[str, Any]:
    return {"model": "hitem3dv2.1", "request_type": 3, "resolution": "1536", **fields}


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


# -- in real Blender: what the panels draw fits ------------------------------------------------------


class SizedLayout:
    """Stands in for ``UILayout`` and knows each part's width: a split gives
    its first item ``factor`` of the width and the next one the rest; rows
    and columns pass their width on. Records (kind, text, icon, width)."""

    def __init__(self, width: float, drawn: list[tuple[str, str, str, float]], factor: float | None = None) -> None:
        self.width = width
        self.drawn = drawn
        self.factor = factor  # set on a split
        self.items = 0
        self.alignment = "EXPAND"
        self.scale_y = 1.0
        self.alert = False
        self.active = True
        self.use_property_split = False
        self.use_property_decorate = True

    def _next_width(self) -> float:
        if self.factor is None:
            return self.width
        self.items += 1
        return self.width * self.factor if self.items == 1 else self.width * (1 - self.factor)

    def _child(self, width: float, factor: float | None = None) -> SizedLayout:
        child = type(self)(width, self.drawn, factor)
        child.use_property_split = self.use_property_split
        return child

    def row(self, **_: Any) -> SizedLayout:
        return self._child(self._next_width())

    column = row

    def box(self, **_: Any) -> SizedLayout:
        return self._child(self._next_width() - BOX)

    def split(self, factor: float = 0.5, **_: Any) -> SizedLayout:
        return self._child(self._next_width(), factor)

    def separator(self, **_: Any) -> None:
        pass

    def label(self, text: str = "", icon: str = "NONE", **_: Any) -> None:
        self.drawn.append(("label", text, icon, self._next_width()))

    def progress(self, text: str = "", **_: Any) -> None:
        self.drawn.append(("progress", text, "NONE", self._next_width()))

    def operator(self, idname: str, text: str | None = None, icon: str = "NONE", **_: Any) -> Any:
        module, name = idname.split(".")
        rna = getattr(getattr(bpy.ops, module), name).get_rna_type()
        label = rna.name if text is None else text
        self.drawn.append(("operator", label, icon, self._next_width()))
        return type("Props", (), {})()

    def prop(self, data: Any, name: str, text: str | None = None, expand: bool = False, **_: Any) -> None:
        """A property as Blender lays it out: expanded choices share the row; in
        a property split the name takes 42 % and the value the rest, a
        checkbox's name sits beside it; a drop-down shows the current choice."""
        width = self._next_width()
        rna = data.bl_rna.properties[name]
        label = self.translate(rna.name, rna.translation_context) if text is None else text
        choice = ""
        if rna.type == "ENUM" and not rna.is_enum_flag:
            items = {item.identifier: item.name for item in rna.enum_items}
            if expand:
                for item_name in items.values():
                    self.drawn.append(("button", self.translate(item_name, rna.translation_context), "NONE",
                                       width / len(items)))
                return
            choice = self.translate(items.get(getattr(data, name), ""), rna.translation_context)
        if rna.type == "BOOLEAN":
            self.drawn.append(("label", label, "NONE", width * (0.58 if self.use_property_split else 1) - 20))
            return
        if self.use_property_split:
            if label:
                self.drawn.append(("label", label, "NONE", width * 0.42))
            width *= 0.58
        if choice:
            self.drawn.append(("button", choice, "NONE", width - 18))

    @staticmethod
    def translate(text: str, context: str) -> str:
        return text

    def template_icon(self, **_: Any) -> None:
        self.drawn.append(("icon", "", "NONE", self._next_width()))

    def template_list(self, *_: Any, **__: Any) -> None:
        self.drawn.append(("list", "", "NONE", self._next_width()))


def cut_labels(drawn: list[tuple[str, str, str, float]], measure: Any) -> list[str]:
    """Texts that would not fit where they are drawn (icon and padding included)."""
    cut = []
    for kind, text, icon, width in drawn:
        if kind in ("label", "progress", "operator", "button") and text:
            needed = measure(text) + 8 + (20 if icon != "NONE" else 0)
            if needed > width + 0.5:
                cut.append(f"{kind} {text!r}: {needed:.0f} px in {width:.0f}")
    return cut


@pytest.fixture
def row_width(addon: ModuleType) -> float:
    return addon.ui.text_fit.list_row_width(addon.ui.text_fit.default_region_width())


def draw_row(addon: ModuleType, rec: TaskRecord, width: float) -> list[tuple[str, str, str, float]]:
    drawn: list[tuple[str, str, str, float]] = []
    item = type("Item", (), {"task_id": rec.task_id})()
    addon.engine.history.book().put(rec)
    addon.ui.panels.HITEM3D_UL_tasks.draw_item(None, None, SizedLayout(width, drawn), None, item, 0, None, None)  # type: ignore[arg-type]
    return drawn


def records(addon: ModuleType) -> Iterator[Any]:
    tasks = addon.core.tasks
    for state, extra in ((S.PENDING, {}), (S.QUEUEING, {}), (S.PROCESSING, {"progress": 0.42}),
                         (S.DOWNLOADING, {"progress": 0.3, "bytes_done": 12_800_000, "bytes_total": 40_000_000}),
                         (S.DOWNLOADING, {"progress": 0.0, "bytes_done": 123_400_000}),
                         (S.DOWNLOADED, {}), (S.DONE, {}), (S.FAILED, {}), (S.CANCELLED, {})):
        rec = tasks.TaskRecord(TASK_ID, state=tasks.TaskState(state.value), **extra)
        rec.started_at -= 3 * 3600 + 125  # the widest time a row shows
        yield rec


def test_every_row_shows_its_name_bar_and_time_uncut_at_the_default_width(addon: ModuleType, row_width: float) -> None:
    for rec in records(addon):
        drawn = draw_row(addon, rec, row_width)
        texts = [text for _, text, _, _ in drawn]
        assert texts[0] == TASK_ID[:8] and texts[-1] == "3h", texts
        assert not cut_labels(drawn, addon.ui.text_fit.measure), (rec.state, drawn)


def test_a_row_s_bar_shows_the_percentage_or_the_size(addon: ModuleType, row_width: float) -> None:
    shown = {rec.bytes_total: [(kind, text) for kind, text, _, _ in draw_row(addon, rec, row_width)][1]
             for rec in records(addon) if rec.state.value == "downloading"}
    assert shown == {40_000_000: ("progress", "32%"), None: ("progress", "123.4 MB")}


def test_a_row_names_a_generation_after_its_picture(addon: ModuleType, row_width: float) -> None:
    rec = addon.core.tasks.TaskRecord(TASK_ID, generation=generation(image="/p/Chair front.png"))
    assert draw_row(addon, rec, row_width)[0][1] == "Chair front"


def draw_details_at_default_width(addon: ModuleType, rec: Any) -> list[tuple[str, str, str, float]]:
    """What the details box of ``rec`` draws in a sidebar of the default width."""
    addon.engine.history.book().put(rec)
    drawn: list[tuple[str, str, str, float]] = []
    width = addon.ui.text_fit.default_region_width()
    addon.ui.panels.draw_details(SizedLayout(addon.ui.text_fit.content_width(width), drawn).box(), rec, width)
    return drawn


def test_the_details_fit_the_default_width_and_lose_no_word(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks, messages = addon.core.tasks, addon.core.messages
    rec = tasks.TaskRecord(TASK_ID, state=tasks.TaskState.FAILED, model="hitem3dv2.1")
    rec.message = messages.msg("{message} (code {code})", code="50010001", message=messages.msg(
        "Generation failed on Hitem3D (credits are refunded): retry, or try another image"))
    rec.finished_at = rec.started_at + 65
    drawn = draw_details_at_default_width(addon, rec)
    assert not cut_labels(drawn, addon.ui.text_fit.measure)
    shown = " ".join(text for kind, text, _, _ in drawn if kind == "label")
    assert no_space(str(rec.message)) in no_space(shown)
    assert no_space(TASK_ID) in no_space(shown)


def test_chinese_details_fit_too(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    table = addon.i18n.translations.translations_dict()["zh_HANS"]
    monkeypatch.setattr(addon.i18n.translations, "iface", lambda msgid, context="*": table.get((context, msgid), msgid))
    tasks, messages = addon.core.tasks, addon.core.messages
    rec = tasks.TaskRecord(TASK_ID, state=tasks.TaskState.FAILED)
    rec.message = messages.msg("TLS certificate of {host} is not trusted: if your network inspects HTTPS, "
                               "set its CA bundle in Network settings", host="api.hitem3d.ai")
    drawn = draw_details_at_default_width(addon, rec)
    assert not cut_labels(drawn, addon.ui.text_fit.measure)
    shown = "".join(text for kind, text, _, _ in drawn if kind == "label")
    assert no_space(addon.i18n.translations.text(rec.message)) in no_space(shown)


def test_a_placeholder_cover_leaves_no_empty_box(addon: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(addon.ui.ui_sync, "cover_icon", lambda rec: 7)  # background Blender makes no icons
    rec = addon.core.tasks.TaskRecord(TASK_ID, state=addon.core.tasks.TaskState.DONE)
    for size, boxes in ((1, 0), (256, 1)):
        cover = tmp_path / f"cover-{size}.png"
        cover.write_bytes(png(size, size))
        rec.cover_path = str(cover)
        drawn: list[tuple[str, str, str, float]] = []
        addon.ui.panels.draw_details(SizedLayout(300, drawn), rec, 400)
        assert sum(kind == "icon" for kind, *_ in drawn) == boxes


def test_every_choice_of_new_generation_fits_at_the_default_width(addon: ModuleType) -> None:
    text_fit = addon.ui.text_fit
    content = text_fit.content_width(text_fit.default_region_width())
    value = content * text_fit.SPLIT_VALUE_SHARE - text_fit.DROPDOWN_CHROME
    settings = addon.ui.generation_settings.HITEM3D_GenerateSettings.bl_rna.properties
    too_wide = [item.name for name in ("model", "request_type") for item in settings[name].enum_items
                if text_fit.measure(item.name) > value]
    # Expanded into a row of two buttons.
    too_wide += [item.name for name in ("mode", "source") for item in settings[name].enum_items
                 if text_fit.measure(item.name) + 8 > content / 2]
    assert not too_wide


PANELS = ("HITEM3D_PT_main", "HITEM3D_PT_import_options", "HITEM3D_PT_generate", "HITEM3D_PT_parts",
          "HITEM3D_PT_relief")


def draw_panel(name: str, layout: SizedLayout) -> None:
    getattr(bpy.types, name).draw(type("Panel", (), {"layout": layout})(), bpy.context)


@pytest.mark.parametrize("language", ["en", "zh_HANS"])
@pytest.mark.parametrize("panel", PANELS)
def test_no_label_of_a_panel_is_cut_at_the_default_width(addon: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                         panel: str, language: str) -> None:
    table = addon.i18n.translations.translations_dict()["zh_HANS"] if language != "en" else {}

    def lookup(msgid: str, context: str = "*") -> str:
        return table.get((context or "*", msgid), msgid)

    monkeypatch.setattr(addon.i18n.translations, "iface", lookup)
    monkeypatch.setattr(SizedLayout, "translate", staticmethod(lookup))
    content = addon.ui.text_fit.content_width(addon.ui.text_fit.default_region_width())
    drawn: list[tuple[str, str, str, float]] = []
    draw_panel(panel, SizedLayout(content, drawn))
    assert drawn
    assert not cut_labels(drawn, addon.ui.text_fit.measure)


def test_every_number_in_the_preferences_has_its_unit(addon: ModuleType) -> None:
    props = addon.ui.preferences.HITEM3D_Preferences.bl_rna.properties
    numbers = [prop for prop in props if prop.type in ("FLOAT", "INT")]
    assert numbers
    # A count is named after what it counts ("Converters at once").
    counts = {"max_converters"}
    unitless = [prop.identifier for prop in numbers if prop.unit == "NONE" and not re.search(r"\(\w+\)$", prop.name)
                and prop.identifier not in counts]
    assert not unitless


# -- the ID field, the order, the console ------------------------------------------------------------


def test_the_id_field_is_cleared_once_its_tasks_have_started(addon: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                             prefs: Any, sim: Any) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    wm = bpy.context.window_manager.hitem3d
    wm.task_id = "not-an-id!"
    with pytest.raises(RuntimeError):
        bpy.ops.hitem3d.import_task()
    assert wm.task_id == "not-an-id!"  # kept to be corrected
    wm.task_id = f"{sim.add_task('first-task-0001')}, {sim.add_task('second-task-0002')}"
    assert bpy.ops.hitem3d.import_task() == {"FINISHED"}
    assert wm.task_id == ""


def test_the_list_shows_the_newest_first_and_a_paste_in_its_order(addon: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                                   prefs: Any, sim: Any) -> None:
    monkeypatch.setattr(addon.engine.state, "runs_to_end", lambda: False)
    first, second, third = (sim.add_task(f"task-{n}-0000000") for n in ("one", "two", "three"))
    bpy.ops.hitem3d.import_task(task_id=first)
    bpy.ops.hitem3d.import_task(task_id=f"{second} {third}")
    assert [rec.task_id for rec in addon.engine.history.book()] == [second, third, first]


def test_a_failure_reaches_the_console_once(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blender prints every report of an operator called from Python: what it
    printed is not printed again by our console handler."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    ui_sync = addon.ui.ui_sync
    monkeypatch.setattr(ui_sync, "bpy", type("B", (), {"app": type("A", (), {"background": False})}))
    message = addon.core.messages.msg("Task {short}: {reason}", short="2c2ad20c", reason="x")
    monkeypatch.setattr(ui_sync, "_report_to_info_log", lambda message, level: True)
    ui_sync.post_report(message, "ERROR")
    assert "Task 2c2ad20c" not in stream.getvalue()
    monkeypatch.setattr(ui_sync, "_report_to_info_log", lambda message, level: False)  # no window to report in
    ui_sync.post_report(message, "ERROR")
    assert stream.getvalue().count("Task 2c2ad20c") == 1


def test_the_log_file_keeps_every_failure(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(addon.__name__)
    logger.addHandler(handler)
    try:
        monkeypatch.setattr(addon.ui.ui_sync, "bpy", type("B", (), {"app": type("A", (), {"background": False})}))
        monkeypatch.setattr(addon.ui.ui_sync, "_report_to_info_log", lambda message, level: True)
        addon.ui.ui_sync.post_report(addon.core.messages.msg("The download was cut short: retry"), "ERROR")
    finally:
        logger.removeHandler(handler)
    assert [record.getMessage() for record in records] == ["The download was cut short: retry"]


def test_a_refusal_for_many_tasks_is_reported_once(addon: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                   prefs: Any) -> None:
    posted: list[str] = []
    monkeypatch.setattr(addon.engine.state.hooks, "post_report", lambda message, level: posted.append(str(message)))
    bpy.context.preferences.system.use_online_access = False
    try:
        with pytest.raises(RuntimeError, match="Online access is off") as info:
            bpy.ops.hitem3d.import_task(task_id="first-task-0001 second-task-0002 third-task-0003")
    finally:
        bpy.context.preferences.system.use_online_access = True
    assert str(info.value).count("Online access is off") == 1  # the operator's own report
    assert posted == []  # and no second one per task
    assert [rec.state.value for rec in addon.engine.history.book()] == ["failed"] * 3


def test_tasks_that_cannot_resume_are_reported_once(addon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    hooks = addon.engine.state.hooks
    monkeypatch.setattr(hooks, "post_report", lambda message, level: posted.append(str(message)))

    def no_credentials() -> Any:
        raise addon.core.errors.CredentialsMissing()

    monkeypatch.setattr(hooks, "settings", no_credentials)
    for task_id in ("first-task-0001", "second-task-0002"):
        addon.engine.history.book().put(addon.core.tasks.TaskRecord(task_id))
    addon.engine.control.resume_unfinished()
    assert len(posted) == 1 and posted[0].startswith("No Hitem3D credentials")
    assert [rec.state.value for rec in addon.engine.history.book()] == ["failed", "failed"]
