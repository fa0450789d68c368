"""The real-window tier's own promises that hold without root: skipping out loud,
a chroot cache marked complete only after a whole build, and its figures."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import build
from tests.gui import chroot, probe


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HITEM3D_GUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_gui_test_skips_with_a_visible_line_when_not_root(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 1000)
    assert build.main(["--no-venv", "gui-test"]) == 0
    assert "gui-test skipped: the real-window tier needs root" in capsys.readouterr().out


def test_the_probe_benchmark_says_skipped_when_the_tier_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 1000)
    assert probe.run_probe(Path("unused.zip")) == {"skipped": "the real-window tier needs root (chroot, mounts)"}


def _fake_build(monkeypatch: pytest.MonkeyPatch, fail_at: str | None) -> list[str]:
    """Debootstrap and apt-get replaced by steps that make folders (or fail at one)."""
    steps: list[str] = []

    def run(cmd: Any, what: str, **_: Any) -> None:
        steps.append(what)
        if what == fail_at:
            raise chroot.Unavailable(f"{what} failed")
        if what == "debootstrap":
            (Path(cmd[3]) / "etc").mkdir(parents=True)

    @contextlib.contextmanager
    def mounted(root: Path) -> Iterator[Path]:
        yield root

    monkeypatch.setattr(chroot, "_run", run)
    monkeypatch.setattr(chroot, "mounted", mounted)
    monkeypatch.setattr(chroot, "unmount_all", lambda path: None)
    monkeypatch.setattr(chroot.shutil, "which", lambda name: f"/usr/sbin/{name}")
    return steps


def test_a_chroot_whose_packages_failed_is_not_marked_complete_and_is_removed(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_build(monkeypatch, fail_at="apt-get install in the chroot")
    with pytest.raises(chroot.Unavailable):
        chroot.prepare()
    assert not chroot.chroot_dir().exists()
    assert not chroot.is_complete(chroot.chroot_dir())


def test_a_whole_build_is_marked_complete_and_then_reused(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _fake_build(monkeypatch, fail_at=None)
    root = chroot.prepare()
    assert chroot.is_complete(root)
    assert (root / "etc" / "mtab").is_symlink()
    built = len(steps)
    assert chroot.prepare() == root
    assert len(steps) == built, "a complete chroot was built again"


def test_leftovers_of_an_interrupted_build_and_older_recipes_are_removed(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chroot, "end_processes_inside", lambda path: None)
    monkeypatch.setattr(chroot, "unmount_all", lambda path: None)
    current, half, old = chroot.chroot_dir(), cache / "trixie-half", cache / "trixie-old"
    for folder in (current, half, old):
        folder.mkdir(parents=True)
    (current / chroot.COMPLETE_MARK).write_text(chroot.RECIPE, encoding="utf-8")
    (old / chroot.COMPLETE_MARK).write_text("an older recipe", encoding="utf-8")
    chroot.clear_leftovers()
    assert sorted(path.name for path in cache.iterdir()) == [current.name]


def test_a_second_run_waits_for_the_first_and_gives_up_with_a_reason(cache: Path) -> None:
    with chroot.exclusive():
        started = time.monotonic()
        with pytest.raises(chroot.Unavailable, match="another run held"):
            with chroot.exclusive(timeout_s=1.5):
                pass
        assert time.monotonic() - started >= 1.5
    with chroot.exclusive(timeout_s=1):  # free again once the first is done
        assert (cache / "lock").read_text(encoding="utf-8") == str(os.getpid())


def test_mounts_under_the_cache_are_found_deepest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "mounts"
    table.write_text(f"proc {tmp_path}/root/proc proc rw 0 0\n"
                     f"devtmpfs {tmp_path}/root/dev devtmpfs rw 0 0\n"
                     f"tmpfs {tmp_path}/root/dev/shm tmpfs rw 0 0\n"
                     "proc /proc proc rw 0 0\n", encoding="utf-8")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(table if path == "/proc/mounts" else path,
                                                                          *a, **k))
    assert chroot._mounted_under(tmp_path)[0] == f"{tmp_path}/root/dev/shm"
    assert "/proc" not in chroot._mounted_under(tmp_path)


def test_frame_figures_are_median_p99_and_max_of_the_gaps() -> None:
    gaps = [0.010] * 98 + [0.050, 0.400]
    figures = probe.summary({"gaps": gaps, "draws": {"SpaceView3D.UI": 4}, "seconds": 2.0})
    assert figures["median_gap_ms"] == 10.0
    assert figures["p99_gap_ms"] == 50.0
    assert figures["max_gap_ms"] == 400.0
    assert figures["redraws_per_s"] == {"SpaceView3D.UI": 2.0}
    assert figures["gaps_over_50ms"] == 1
    assert figures["share_of_time_in_gaps_over_50ms"] == 0.2


def test_the_sidebar_rate_is_taken_between_its_first_and_last_redraw() -> None:
    """17 redraws half a second apart in an 8 s window are twice a second,
    not 2.12; one sooner than half a second after another shows."""
    times = [10.0 + 0.5 * n for n in range(17)]
    figures = probe.summary({"gaps": [0.01], "draws": {"SpaceView3D.UI": 17}, "seconds": 8.0,
                             "times": {"SpaceView3D.UI": times}})
    assert figures["redraws_per_s"] == {"SpaceView3D.UI": 2.12}
    assert figures["sidebar_redraws_per_s_first_to_last"] == 2.0
    assert figures["sidebar_shortest_interval_s"] == 0.5
    times.insert(1, 10.1)
    figures = probe.summary({"gaps": [0.01], "draws": {"SpaceView3D.UI": 18}, "seconds": 8.0,
                             "times": {"SpaceView3D.UI": times}})
    assert figures["sidebar_redraws_per_s_first_to_last"] == 2.12
    assert figures["sidebar_shortest_interval_s"] == 0.1


def test_the_limit_is_judged_on_the_redraws_we_ask_for() -> None:
    """Blender redraws the sidebar itself after an operator: the redraws the
    extension asked for are told apart by when it tagged the region."""
    draws = [10.0, 10.06] + [10.5 + 0.5 * n for n in range(15)]
    tags = [9.995] + [10.495 + 0.5 * n for n in range(15)]
    figures = probe.summary({"gaps": [0.01], "draws": {"SpaceView3D.UI": 17}, "seconds": 8.0,
                             "times": {"SpaceView3D.UI": draws}, "tags": tags})
    assert figures["sidebar_redraws_per_s_first_to_last"] == 2.13
    assert figures["our_redraw_requests_per_s_first_to_last"] == 2.0
    assert figures["our_redraw_requests_at_s"][:2] == [-0.005, 0.495]


def test_our_draw_time_is_the_panels_draw_time_per_second_and_per_redraw() -> None:
    draw_ns = {"HITEM3D_PT_main.draw": [3_000_000, 4], "HITEM3D_PT_generate.draw": [1_000_000, 4]}
    figures = probe.summary({"gaps": [0.01], "draws": {"SpaceView3D.UI": 4}, "seconds": 2.0, "draw_ns": draw_ns})
    assert figures["our_draw_ms_per_s"] == 2.0
    assert figures["our_draw_ms_per_sidebar_redraw"] == 1.0
