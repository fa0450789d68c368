"""CI runs every check where it can: the Chinese catalogue is compared with
Blender's own on every Blender version of the matrix wherever the real-window
tier's chroot (which holds Blender's catalogue) can be made."""

from __future__ import annotations

import re
from pathlib import Path

from tests.blender.test_translations import blender_catalogues
from tests.gui import chroot

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def steps() -> list[str]:
    """The command of each CI step, in order."""
    return re.findall(r'^step "[^"]+" (.+)$', CI, re.MULTILINE)


def test_the_real_window_step_makes_the_chroot_before_the_matrix_looks_for_blenders_catalogue() -> None:
    commands = steps()
    window = next(index for index, command in enumerate(commands) if "build.py gui-test" in command)
    matrix = [index for index, command in enumerate(commands) if re.search(r"build\.py test\b", command)]
    assert matrix and window < min(matrix), commands


def test_the_translation_check_looks_where_the_real_window_tier_keeps_its_chroot() -> None:
    catalogue = chroot.chroot_dir() / "usr/share/locale/zh_HANS/LC_MESSAGES/blender.mo"
    if catalogue.is_file():
        assert catalogue in blender_catalogues()
    else:
        # No chroot on this machine: the pattern the check globs must still reach it once made.
        assert chroot.chroot_dir().parent == chroot.cache_dir()
