"""A virtual X display and a real Blender window inside the chroot, driven from the host.

Every process started here gets its own process group and is recorded, so
``Processes.end_all`` (run from ``finally`` and from signal handlers) ends them
whatever happened. Input is real X input through ``xdotool``; what Blender
shows is read through the agent (``agent.py``) and screenshots.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
INSIDE = "/tmp/hitem3d-gui"  # the run's folder as the chroot sees it
WIDTH, HEIGHT = 1920, 1080
# At the default interface scale (measured on Blender 4.3): a button's height,
# and how far one notch of the mouse wheel scrolls a panel region.
BUTTON_PX = 20
WHEEL_NOTCH_PX = 40
# A closed sub-panel's header, and the margin under the last panel.
PANEL_HEADER_PX = 26
PANEL_END_PX = 4


class GuiFailure(AssertionError):
    """A scenario's check failed; the message says what was seen."""


@dataclass
class Processes:
    """Every child we started, each in its own process group."""

    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, cmd: Sequence[str], log_path: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        child = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        out.close()
        self.children.append(child)
        return child

    def end(self, child: subprocess.Popen[bytes], grace_s: float = 5.0) -> int | None:
        if child.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(child.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    child.wait(timeout=grace_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if child in self.children:
            self.children.remove(child)
        return child.returncode

    def end_all(self) -> None:
        for child in reversed(list(self.children)):
            self.end(child, grace_s=3.0)

    @contextmanager
    def ended(self) -> Iterator[None]:
        """Every child ended on the way out, however the block is left."""
        try:
            yield
        finally:
            self.end_all()


class Chroot:
    """Run commands in the chroot with the run's folder at ``INSIDE``."""

    def __init__(self, root: Path, processes: Processes) -> None:
        self.root = root
        self.processes = processes
        self.run_dir = root / INSIDE.lstrip("/")
        self.display = ""

    def host_path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def env(self, **extra: str) -> list[str]:
        base = {
            "HOME": f"{INSIDE}/home", "LANG": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "BLENDER_USER_RESOURCES": f"{INSIDE}/user", "XDG_CACHE_HOME": f"{INSIDE}/user/cache",
            "LIBGL_ALWAYS_SOFTWARE": "1", "HITEM3D_GUI_CHANNEL": f"{INSIDE}/channel",
        }
        if self.display:
            base["DISPLAY"] = self.display
        base.update(extra)
        return ["env", "-i", *(f"{key}={value}" for key, value in base.items())]

    def command(self, args: Sequence[str], **env: str) -> list[str]:
        return ["chroot", str(self.root), *self.env(**env), *args]

    def run(self, args: Sequence[str], *, timeout: float = 120, check: bool = True,
            **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(args, **env), capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)
        if check and done.returncode != 0:
            raise GuiFailure(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def fresh_run_dir(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for sub in ("home", "user", "channel", "logs", "shots"):
            (self.run_dir / sub).mkdir(parents=True)

    def start_display(self) -> None:
        """Xvfb on a free display number (another run may hold :99)."""
        read_fd, write_fd = os.pipe()
        log_path = self.run_dir / "logs" / "xvfb.log"
        self.processes.start(
            self.command(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{WIDTH}x{HEIGHT}x24",
                          "+extension", "GLX", "-nolisten", "tcp"]),
            log_path, pass_fds=(write_fd,))
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        os.close(read_fd)
        if not number.strip().isdigit():
            raise GuiFailure(f"Xvfb did not start: {log_path.read_text(errors='replace')[-1000:]}")
        self.display = f":{number.decode().strip()}"
        log.info("Xvfb on display %s", self.display)

    # ---- real input ----

    def xdotool(self, *args: str | int) -> None:
        self.run(["xdotool", *(str(arg) for arg in args)], timeout=20)

    def screenshot(self, name: str, crop: dict[str, int] | None = None, *, window_title: str = "") -> Path:
        """The screen (or the X window whose title contains ``window_title``), cropped, as PNG."""
        target = f"{INSIDE}/shots/{name}.png"
        window = "root"
        if window_title:
            found = self.run(["xdotool", "search", "--name", window_title], timeout=20).stdout.split()
            window = found[-1]
        args = ["import", "-silent", "-window", window]
        if crop is not None:
            args += ["-crop", f"{crop['w']}x{crop['h']}+{crop['x']}+{crop['y']}", "+repage"]
        self.run([*args, target], timeout=60)
        return self.host_path(target)


class Blender:
    """One Blender process with a window (or a headless one for the command line)."""

    def __init__(self, chroot: Chroot, name: str, extra_args: Sequence[str] = ()) -> None:
        self.chroot = chroot
        self.name = name
        self.channel = chroot.run_dir / "channel"
        shutil.rmtree(self.channel, ignore_errors=True)
        (self.channel / "in").mkdir(parents=True)
        (self.channel / "out").mkdir(parents=True)
        self.log_path = chroot.run_dir / "logs" / f"blender-{name}.log"
        self.process = chroot.processes.start(
            chroot.command(["blender", "-p", "0", "0", str(WIDTH), str(HEIGHT), "--online-mode",
                            "--python", f"{INSIDE}/agent.py", *extra_args]),
            self.log_path)
        self._seq = 0
        self.wait_for(lambda: (self.channel / "agent-loaded").is_file(), 60, "Blender's window to open")
        self.call("result = None", timeout=60)  # the timer runs: the event loop is up

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if not self.alive():
                raise GuiFailure(f"Blender exited ({self.process.returncode}) while waiting for {what}:\n"
                                 f"{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise GuiFailure(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def call(self, code: str, *, timeout: float = 30, keep: Sequence[str] = ()) -> Any:
        """Run Python in Blender's main thread (from its timer); return ``result``."""
        self._seq += 1
        name = f"{self._seq:06d}.json"
        tmp = self.channel / "in" / f"{name}.tmp"
        tmp.write_text(json.dumps({"code": code, "keep": list(keep)}), encoding="utf-8")
        tmp.replace(self.channel / "in" / name)
        reply_path = self.channel / "out" / name
        self.wait_for(reply_path.is_file, timeout, f"an answer to {code.strip().splitlines()[0]!r}", 0.01)
        reply = json.loads(reply_path.read_text(encoding="utf-8"))
        reply_path.unlink()
        if not reply["ok"]:
            raise GuiFailure(f"in Blender: {reply['error']}")
        return reply["result"]

    def until(self, code: str, timeout: float, what: str, interval: float = 0.1) -> Any:
        """Ask again until ``result`` is truthy."""
        return self.wait_for(lambda: self.call(code), timeout, what, interval)

    # ---- the sidebar, with real input ----

    def open_hitem3d_tab(self) -> dict[str, int]:
        """Open the sidebar and click down its tab strip until the Hitem3D tab is active, as a user does."""
        self.call("result = open_sidebar()")
        time.sleep(0.3)
        info = self.call("result = sidebar()")
        rect = info["rect"]
        # NOTE: Region.active_panel_category is read-only in 4.3, and the tabs' places are
        # not exposed: each click says which tab sits there.
        x = rect["x"] + rect["w"] - 10
        for y in range(rect["y"] + 20, rect["y"] + min(rect["h"], 600), 12):
            if info["category"] == "Hitem3D":
                return dict(rect)
            self.click(x, y)
            time.sleep(0.1)
            info = self.call("result = sidebar()")
        if info["category"] == "Hitem3D":
            return dict(rect)
        raise GuiFailure(f"no Hitem3D tab in the sidebar (last: {info['category']!r})")

    # ---- scrolling: the sidebar is often taller than the window ----

    def sidebar_scroll(self) -> int:
        """How far the sidebar is scrolled down, in pixels (0 at the top)."""
        return round(-self.call("_, reg = view3d()\nresult = reg.view2d.region_to_view(0, reg.height)[1]")) + 1

    def _settled_scroll(self) -> int:
        """The scroll once it stops moving and the sidebar has been drawn there."""
        last = self.sidebar_scroll()
        for _ in range(20):
            time.sleep(0.1)
            now = self.sidebar_scroll()
            if now == last:
                break
            last = now
        self.drawn_anew()
        return last

    def drawn_anew(self) -> None:
        """Wait until the sidebar has been drawn since now (software OpenGL
        on a busy machine can take a second): until then Blender finds the
        mouse's button where the last drawing put it."""
        self.call("sidebar_draws_watch()")
        try:
            self.until("result = _sidebar_draws['count'] > 0", 10, "the sidebar to be drawn")
        finally:
            self.call("sidebar_draws_unwatch()")

    def scroll_sidebar(self, notches: int) -> int:
        """Turn the mouse wheel over the sidebar (positive: down), as a user
        does; returns how many pixels the view moved (0 at the end)."""
        rect = self.call("result = sidebar()")["rect"]
        before = self.sidebar_scroll()
        self.chroot.xdotool("mousemove", rect["x"] + rect["w"] // 2, rect["y"] + rect["h"] // 2,
                            "click", "--repeat", abs(notches), "--delay", "10", 5 if notches > 0 else 4)
        return self._settled_scroll() - before

    def sidebar_home(self) -> None:
        """Home over the sidebar: back to its top (nothing when it is there already)."""
        if self.sidebar_scroll() > 0:
            rect = self.call("result = sidebar()")["rect"]
            self.chroot.xdotool("mousemove", rect["x"] + rect["w"] // 2, rect["y"] + rect["h"] // 2,
                                "key", "Home")
            self._settled_scroll()

    def sidebar_end(self) -> None:
        """The mouse wheel over the sidebar until it is at its end."""
        rect = self.call("result = sidebar()")["rect"]
        while self.scroll_sidebar(2 * rect["h"] // WHEEL_NOTCH_PX) > 0:
            pass

    def open_closed_subpanel(self, from_end: int) -> None:
        """Click the header of a closed sub-panel, counted from the end of the
        sidebar (1: the last), as a user opens it.

        NOTE: Blender exposes no panel rectangles either, and a header copies
        nothing; scrolled to its end, the sidebar ends with the closed
        headers, each PANEL_HEADER_PX tall. The caller checks what opened."""
        self.sidebar_end()
        rect = self.call("result = sidebar()")["rect"]
        bottom = rect["y"] + rect["h"] - PANEL_END_PX
        self.click(rect["x"] + rect["w"] // 3, bottom - PANEL_HEADER_PX * from_end + PANEL_HEADER_PX // 2)
        self.chroot.xdotool("mousemove", 1, 1)
        self._settled_scroll()

    def probe_point(self, x: int, y: int) -> str:
        """What Ctrl+C copies with the mouse at (x, y): a field's text or an operator's Python."""
        self.chroot.xdotool("mousemove", x, y, "sleep", "0.03", "key", "ctrl+c", "sleep", "0.03")
        return str(self.call("wm = bpy.context.window_manager\nresult, wm.clipboard = wm.clipboard, '<none>'"))

    def find_in_sidebar(self, wanted: str, *, x_fraction: float = 0.5, step: int = 16,
                        start: int = 30, origin: str = "top") -> tuple[int, int]:
        """Find the button whose Ctrl+C text contains ``wanted`` as a user
        would: from the sidebar's top (``start`` pixels down) to its bottom,
        then with the mouse wheel a page at a time, looking only at what came
        into view. ``origin``: "top", "here" (the view as it is, then down),
        or "end" (scrolled to the end, then upwards: for the buttons at the
        end of a long panel). Returns where it is now, in screen pixels."""
        try:
            return self._find_in_sidebar(wanted, x_fraction, step, start, origin)
        except GuiFailure as failure:
            # NOTE: as a user looks twice: a probe rarely copies nothing over a button
            # on a loaded machine (seen once, taking the README's pictures); one more
            # search, the whole sidebar's if the first began where it stood, tells that
            # from a button that is not there.
            log.warning("looking again for %s: %s", wanted, failure)
            if origin == "here":
                origin, start = "top", 30
            return self._find_in_sidebar(wanted, x_fraction, step, start, origin)

    def _find_in_sidebar(self, wanted: str, x_fraction: float, step: int, start: int,
                         origin: str) -> tuple[int, int]:
        rect = self.call("result = sidebar()")["rect"]
        pages = max(1, (rect["h"] - 2 * BUTTON_PX) // WHEEL_NOTCH_PX)
        from_end = origin == "end"
        if from_end:
            self.sidebar_end()
        elif origin == "top":
            self.sidebar_home()
        try:
            return self.find_button(rect, wanted, x_fraction=x_fraction, step=step, start=start, upward=from_end)
        except GuiFailure:
            pass
        scrolled = 0
        while True:
            moved = self.scroll_sidebar(-pages if from_end else pages)
            if moved == 0:
                raise GuiFailure(f"no button for {wanted!r} in the sidebar {rect}, scrolled {abs(scrolled)} px "
                                 f"to its {'top' if from_end else 'end'}")
            scrolled += moved
            # Only what came into view; a button cut at the old edge is looked at again.
            if from_end:
                seen_from = -moved + 10 + BUTTON_PX
                found = self._find_quietly(rect, wanted, x_fraction, step, start, min(seen_from, rect["h"]), True)
            else:
                seen_to = rect["h"] - 10 - moved - BUTTON_PX
                found = self._find_quietly(rect, wanted, x_fraction, step, max(start - scrolled, seen_to, 0),
                                           rect["h"], False)
            if found is not None:
                return found

    def _find_quietly(self, rect: dict[str, int], wanted: str, x_fraction: float, step: int, start: int,
                      end: int, upward: bool) -> tuple[int, int] | None:
        try:
            return self.find_button(rect, wanted, x_fraction=x_fraction, step=step, start=start, end=end,
                                    upward=upward)
        except GuiFailure:
            return None

    def find_near(self, wanted: str, y: int, *, reach: int = 320, x_fraction: float = 0.5) -> tuple[int, int]:
        """The button whose Ctrl+C text contains ``wanted``, looked for outward
        from screen row ``y`` (where it was before the panel changed)."""
        rect = self.call("result = sidebar()")["rect"]
        x = rect["x"] + int(rect["w"] * x_fraction)
        self.call("bpy.context.window_manager.clipboard = '<none>'")
        for distance in range(0, reach, 16):
            for row in sorted({y - distance, y + distance}):
                if rect["y"] + 10 <= row < rect["y"] + rect["h"] - 10 and wanted in self.probe_point(x, row):
                    return x, row
        raise GuiFailure(f"no button for {wanted!r} within {reach} px of y={y} in {rect}")

    def shade(self, x: int, y: int, w: int = 120, h: int = 12) -> float:
        """How light the screen is around (x, y), from 0 (black) to 1, with
        the mouse elsewhere: an inactive button is drawn darker."""
        self.chroot.xdotool("mousemove", 1, 1)
        time.sleep(0.4)  # the hover highlight goes with the next redraw
        self.chroot.screenshot("shade", {"x": x - w // 2, "y": y - h // 2, "w": w, "h": h})
        return float(self.chroot.run(["convert", f"{INSIDE}/shots/shade.png", "-colorspace", "Gray",
                                      "-format", "%[fx:mean]", "info:"]).stdout)

    def find_button(self, rect: dict[str, int], wanted: str, *, x_fraction: float = 0.5, step: int = 16,
                    start: int = 30, end: int | None = None, upward: bool = False) -> tuple[int, int]:
        """Scan ``rect`` (screen pixels) from ``start`` to ``end`` pixels down
        (``upward``: the other way) for the button whose Ctrl+C text contains ``wanted``.

        NOTE: Blender exposes no button rectangles to Python, and each probe costs
        about a tenth of a second in software OpenGL; buttons are 20 px tall at the
        default scale, so a 16 px step hits every one."""
        x = rect["x"] + int(rect["w"] * x_fraction)
        self.call("bpy.context.window_manager.clipboard = '<none>'")
        rows = range(start, min(rect["h"] if end is None else end, rect["h"] - 10), step)
        for dy in reversed(rows) if upward else rows:
            y = rect["y"] + dy
            if wanted in self.probe_point(x, y):
                return x, y
        raise GuiFailure(f"no button for {wanted!r} in {rect}")

    def open_preferences(self) -> dict[str, int]:
        """Edit > Preferences > Add-ons > Hitem3D in its own window, placed on screen; its rect."""
        self.call("show_preferences_window()")
        time.sleep(1.0)
        # No window manager places it: xdotool does, at a size that shows the add-on whole.
        rect = {"x": 40, "y": 40, "w": 1000, "h": 860}
        self.chroot.xdotool("search", "--name", "Preferences", "windowmove", rect["x"], rect["y"],
                            "windowsize", rect["w"], rect["h"])
        time.sleep(1.0)
        return rect

    def close_preferences(self) -> None:
        self.call("for w in list(ctx().window_manager.windows)[1:]:\n"
                  "    with ctx().temp_override(window=w):\n"
                  "        bpy.ops.wm.window_close()")

    def click(self, x: int, y: int) -> None:
        self.chroot.xdotool("mousemove", x, y, "sleep", "0.05", "click", "1")

    def quit(self, timeout: float = 30) -> int | None:
        """Quit the way File > Quit does; return Blender's exit code."""
        try:
            self.call("with bpy.context.temp_override(window=window()):\n"
                      "    bpy.ops.wm.quit_blender()", timeout=5)
        except GuiFailure:
            pass  # it may be gone before it answers
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.chroot.processes.end(self.process)
