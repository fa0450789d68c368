"""Text that fits the sidebar: measured with Blender's own UI font.

Labels do not wrap and Blender cuts what does not fit with "…", so the panels
measure text with ``blf`` at the interface's scale and lay it out themselves
(``core.display`` does the arithmetic).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

import blf
import bpy

from ..core import display

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import IconItems

UI_FONT = 0  # blf's id of the interface font
# NOTE: widths in pixels at UI scale 1, measured in Blender 4.3's window (the
# real-window tier's screenshots): the 3D viewport's sidebar opens about 295
# px wide, the category tabs and the panel's margins take 59 of them (a
# text field spans 236), and a property split gives its value 58 %.
DEFAULT_SIDEBAR_WIDTH = 295
_PANEL_MARGINS = 59
BOX_MARGINS = 10  # a box's border and padding, both sides
ICON_WIDTH = 20  # an icon (or BLANK1) before a label's text
CELL_PADDING = 8  # what a label keeps around its text
# NOTE: a progress bar keeps more: at 8 px the 4.3 window cut "25%" to "2…".
BAR_PADDING = 22
SPLIT_VALUE_SHARE = 0.58
DROPDOWN_CHROME = 26  # a drop-down's arrow and padding


def ui_scale() -> float:
    """The interface's scale factor (1 where there is no window, as in background mode)."""
    preferences = bpy.context.preferences
    scale = float(getattr(getattr(preferences, "system", None), "ui_scale", 0.0) or 0.0)
    return scale if scale > 0 else 1.0


def _points() -> float:
    styles: Any = getattr(bpy.context.preferences, "ui_styles", ())
    return float(styles[0].widget.points) if len(styles) else 11.0


def measurer() -> Callable[[str], float]:
    """A function giving the width of a text in pixels, as a label draws it
    now (the preferences are read once: a draw measures many texts)."""
    font = str(getattr(getattr(bpy.context.preferences, "view", None), "font_path_ui", ""))
    size = _points() * ui_scale()
    return functools.partial(_width, size=size, font=font)


def measure(text: str) -> float:
    """The width of ``text`` in pixels, as a label draws it."""
    return measurer()(text)


@functools.lru_cache(maxsize=4096)
def _width(text: str, size: float, font: str) -> float:
    # NOTE: cached: every redraw of the sidebar measures the same few texts
    # again (a row's name is fitted by a dozen trials). The size and the UI
    # font are part of the key, so a new scale or font measures anew.
    blf.size(UI_FONT, size)
    # NOTE: getattr, as the stubs say dimensions returns None; it returns (width, height).
    dimensions: Callable[[int, str], tuple[float, float]] = getattr(blf, "dimensions")
    return float(dimensions(UI_FONT, text)[0])


def content_width(region_width: float, boxes: int = 0) -> float:
    """What a panel's layout has of a sidebar ``region_width`` pixels wide,
    inside ``boxes`` nested boxes."""
    return max(40.0, region_width - (_PANEL_MARGINS + BOX_MARGINS * boxes) * ui_scale())


def default_region_width() -> float:
    return DEFAULT_SIDEBAR_WIDTH * ui_scale()


def wrapped_label(layout: bpy.types.UILayout, text: str, width: float, icon: IconItems = "NONE") -> None:
    """``text`` (already translated) as labels, one per line of ``width``
    pixels of layout, every word kept. Lines after the first are indented
    like the first when it has an icon."""
    text_width = width - (CELL_PADDING + (ICON_WIDTH if icon != "NONE" else 0.0)) * ui_scale()
    for index, line in enumerate(display.wrap(text, text_width, measurer())):
        layout.label(text=line, icon=icon if index == 0 else ("BLANK1" if icon != "NONE" else "NONE"),
                     translate=False)


def wrapped(layout: bpy.types.UILayout, text: str, region_width: float, icon: IconItems = "NONE",
            boxes: int = 0) -> None:
    """``text`` (translated) wrapped to the usable width of a sidebar panel
    ``region_width`` wide, inside ``boxes`` nested boxes: labels do not wrap
    by themselves."""
    wrapped_label(layout, text, content_width(region_width, boxes), icon)


def list_row_width(region_width: float) -> float:
    """What a row of a list (``template_list``) has of the sidebar: the
    content width less the list's frame and scroll bar."""
    return max(40.0, content_width(region_width) - 16 * ui_scale())
