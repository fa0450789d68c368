"""What the sidebar shows, as plain functions: wrapping, names, times, fitting
and covers, tested with any measure of text width (no Blender needed)."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from hitem3d_blender.core import display, images
from hitem3d_blender.core.tasks import TaskRecord

TASK_ID = "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU"


def by_chars(text: str) -> float:
    return 6.0 * len(text)


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- wrapping --------------------------------------------------------------------------------------

TEXTS = [
    "Generation failed on Hitem3D (credits are refunded): retry, or try another image (code 50010001)",
    "Hitem3D 生成失败（积分已退还）：请重试，或换一张图像（代码 50010001）",
    "2c2ad20cb3204697ba7f80351c3e8606.jjewelry-aigc-api.1NraEb5ohU",
    "TLS certificate of api.hitem3d.ai is not trusted: if your network inspects HTTPS, set its CA bundle",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("width", [60.0, 130.0, 236.0])
def test_wrapped_lines_keep_every_word_and_fit_the_width(text: str, width: float) -> None:
    lines = display.wrap(text, width, by_chars)
    assert no_space("".join(lines)) == no_space(text)
    assert all(by_chars(line) <= width for line in lines), lines


def test_lines_break_between_words_not_inside_them() -> None:
    lines = display.wrap("Generation failed on Hitem3D (credits are refunded): retry", 100, by_chars)
    assert lines == ["Generation", "failed on", "Hitem3D (credits", "are refunded):", "retry"]


def test_chinese_breaks_between_characters_and_keeps_punctuation_with_its_word() -> None:
    lines = display.wrap("请重试，或换一张图像", 44, lambda text: 11.0 * len(text))
    assert lines == ["请重试，", "或换一张", "图像"]
    assert display.wrap("请重试，或换一张图像", 33, lambda text: 11.0 * len(text))[:2] == ["请重", "试，或"]


def test_a_long_id_breaks_after_its_dots_and_dashes_where_it_can() -> None:
    lines = display.wrap("2c2ad20c.jjewelry-aigc-api.1NraEb5ohU", 120, by_chars)
    assert lines == ["2c2ad20c.jjewelry-", "aigc-api.1NraEb5ohU"]


def test_empty_text_is_one_empty_line() -> None:
    assert display.wrap("", 100, by_chars) == [""]


# -- names, times, fitting -----------------------------------------------------------------------------


def generation(**fields: Any) -> dict[str, Any]:
    return {"model": "hitem3dv2.1", "request_type": 3, "resolution": "1536", **fields}


def test_a_generation_is_named_after_its_picture() -> None:
    rec = TaskRecord(TASK_ID, generation=generation(image="/renders/Chair front.png"))
    assert display.task_name(rec) == "Chair front"
    views = TaskRecord(TASK_ID, generation=generation(views={"back": "/x/b.png", "front": "/x/robot_f.webp"}))
    assert display.task_name(views) == "robot_f"


def test_a_texture_selection_is_named_after_the_mesh_not_the_picture() -> None:
    rec = TaskRecord(TASK_ID, generation=generation(request_type=2, image="/refs/wood grain.png",
                                                    mesh="/x/exports/Chair-20261103.glb", mesh_name="Chair +2"))
    assert display.task_name(rec) == "Chair +2"


def test_a_split_or_relief_is_named_after_what_it_was_made_from() -> None:
    parts = TaskRecord("split_20261130_8f92ab3e", generation={"kind": "split", "source_name": "Chair"})
    relief = TaskRecord("depth_20261130_8f92ab3e", generation={"kind": "depth", "source_path": "/p/Coin front.png"})
    odd = TaskRecord("depth_20261130_8f92ab3e", generation={"kind": "depth", "source_path": 5})
    assert [display.task_name(rec) for rec in (parts, relief, odd)] == ["Chair", "Coin front", odd.short_id]


def test_an_imported_task_is_named_by_the_short_form_of_its_id() -> None:
    assert display.task_name(TaskRecord(TASK_ID)) == TASK_ID[:8]


def test_a_long_picture_name_keeps_both_ends() -> None:
    rec = TaskRecord(TASK_ID, generation=generation(image="/p/IMG_20261130_104512_final_v3_approved.jpg"))
    name = display.task_name(rec)
    assert len(name) == display.NAME_CHARS and name.startswith("IMG_2026") and name.endswith("approved")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (65, "1m"), (3599, "59m"),
                                               (3 * 3600 + 125, "3h")])
def test_a_row_s_time_is_compact_and_has_its_unit(seconds: float, text: str) -> None:
    assert str(display.duration(seconds, units=1)) == text


def test_fitting_shortens_in_the_middle_and_never_overflows() -> None:
    assert display.fit("2c2ad20c", 60, by_chars) == "2c2ad20c"
    fitted = display.fit("2c2ad20cb3204697ba7f", 60, by_chars)
    assert by_chars(fitted) <= 60 and "…" in fitted
    assert fitted.startswith("2c2a") and fitted.endswith("a7f")


def test_a_row_too_narrow_for_everything_drops_the_time_before_cutting_the_name() -> None:
    row = display.fit_row(185, "2c2ad20c", "Ready to import", "59m", by_chars, icon=20, padding=8)
    assert not row.show_time and row.name == "2c2ad20c"
    assert by_chars(row.name) + 28 <= 185 * row.name_factor + 0.01
    narrower = display.fit_row(160, "2c2ad20c", "Ready to import", "59m", by_chars, icon=20, padding=8)
    assert "…" in narrower.name and by_chars(narrower.name) + 28 <= 160 * narrower.name_factor + 0.01


def test_a_row_gives_the_bar_and_the_time_what_they_need_and_the_name_the_rest() -> None:
    row = display.fit_row(220, "Chair front", "100%", "59m", by_chars, icon=20, padding=8)
    name_width = 220 * row.name_factor
    rest = 220 - name_width
    assert by_chars(row.name) + 28 <= name_width + 0.01 and row.name == "Chair front"
    assert by_chars("100%") + 8 <= rest * row.middle_factor + 0.01
    assert by_chars("59m") + 8 <= rest * (1 - row.middle_factor) + 0.01


def test_a_row_s_bar_keeps_room_for_its_rounded_ends_and_for_100_percent() -> None:
    """In the 4.3 window a bar given only its text and a label's padding showed "2…" for "25%"."""
    row = display.fit_row(220, "Chair front", "5%", "59m", by_chars, icon=20, padding=8, bar_padding=22)
    rest = 220 * (1 - row.name_factor)
    assert by_chars("100%") + 22 <= rest * row.middle_factor + 0.01
    size = display.fit_row(220, "Chair front", "12.8 MB", "59m", by_chars, icon=20, padding=8, bar_padding=22)
    rest = 220 * (1 - size.name_factor)
    assert by_chars("12.8 MB") + 22 <= rest * size.middle_factor + 0.01


# -- covers ------------------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_a_placeholder_cover_gets_no_box(tmp_path: Path) -> None:
    for name, data, shown in (("one.png", png(1, 1), False), ("cover.png", png(512, 512), True),
                              ("junk.png", b"not an image", False)):
        (tmp_path / name).write_bytes(data)
        assert display.cover_worth_showing(images.image_size(tmp_path / name)) is shown


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (65, "1m 05s"), (600, "10m"), (3600, "1h"),
                                               (7500, "2h 05m"), (3 * 3600 + 120, "3h 02m")])
def test_every_time_shown_has_one_style_and_drops_a_zero_second_unit(seconds: float, text: str) -> None:
    assert str(display.duration(seconds)) == text
