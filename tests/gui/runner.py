"""``python build.py gui-test``: the real-window tier, from the chroot to the verdict.

    python -m tests.gui --zip dist/hitem3d_blender-X.zip [--only NAME ...] [--keep-logs DIR]

Steps: clear what a killed run left (processes, mounts, half-built chroots),
prepare the cached chroot, bind /proc and /dev, start the simulator on the
host's loopback (the chroot shares the network), install the zip the way a
user does, start Xvfb, run the scenarios, and always end every process and
unmount, on success, failure, Ctrl+C or SIGTERM.

Exit codes: 0 all passed (or skipped, with a "skipped" line saying why),
1 a scenario failed, 2 the tier could not be set up.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from tests.support.simulator import Hitem3DSimulator

from . import chroot as chroot_mod
from .session import HERE, INSIDE, Chroot, GuiFailure, Processes

log = logging.getLogger("gui-test")
ADDON = "bl_ext.user_default.hitem3d_blender"
REPO_ROOT = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    print(f"gui-test: {message}", flush=True)


class Stop(BaseException):
    """A signal arrived: unwind through every ``finally``."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop(f"signal {signum}")


@contextmanager
def environment(zip_path: Path) -> Iterator[tuple[Chroot, Hitem3DSimulator]]:
    """The chroot mounted, the zip installed, Xvfb up and the simulator listening; all undone after."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    processes = Processes()
    with chroot_mod.exclusive():
        chroot_mod.clear_leftovers()
        started = time.monotonic()
        root = chroot_mod.prepare()
        say(f"chroot ready: {root} ({time.monotonic() - started:.0f} s)")
        with processes.ended(), chroot_mod.mounted(root), Hitem3DSimulator() as sim:
            jail = Chroot(root, processes)
            jail.fresh_run_dir()
            shutil.copy2(HERE / "agent.py", jail.run_dir / "agent.py")
            shutil.copy2(zip_path, jail.run_dir / zip_path.name)
            install(jail, zip_path.name, sim.base_url)
            jail.start_display()
            yield jail, sim


def install(jail: Chroot, zip_name: str, base_url: str) -> None:
    """The user's way in: Blender's own extension command, then preferences without the splash."""
    version = jail.run(["blender", "--version"]).stdout.splitlines()[0]
    jail.run(["blender", "-b", "--online-mode", "--command", "extension", "install-file",
              "-r", "user_default", "-e", f"{INSIDE}/{zip_name}"], timeout=300)
    jail.run(["blender", "-b", "--online-mode", "--python-expr",
              "import bpy\n"
              "p = bpy.context.preferences\n"
              "p.view.show_splash = False\n"
              "p.system.use_online_access = True\n"
              # The simulator as API address; credentials come later (environment, or typed in).
              f"p.addons[{ADDON!r}].preferences.base_url = {base_url!r}\n"
              "bpy.ops.wm.save_userpref()\n"], timeout=120)
    say(f"installed {zip_name} into {version} with `blender --command extension install-file`")


def run_scenarios(jail: Chroot, sim: Hitem3DSimulator, only: Sequence[str]) -> int:
    from .scenarios import SCENARIOS, Run

    run = Run(jail, sim)
    failures = 0
    for scenario in SCENARIOS:
        if only and scenario.__name__ not in only:
            continue
        started = time.monotonic()
        try:
            scenario(run)
        except GuiFailure as failure:
            failures += 1
            say(f"FAIL {scenario.__name__} ({time.monotonic() - started:.1f} s): {failure}")
        except Exception:  # noqa: BLE001 - a broken scenario is a failure, with its traceback
            failures += 1
            say(f"FAIL {scenario.__name__}: {traceback.format_exc()}")
        else:
            say(f"ok   {scenario.__name__} ({time.monotonic() - started:.1f} s): {(scenario.__doc__ or '').strip()}")
    for note in run.notes:
        say(f"seen: {note}")
    if run.blender is not None and run.blender.alive():
        run.blender.quit()
    return failures


def guarded(work: Callable[[Chroot, Hitem3DSimulator], int], zip_path: Path, keep_logs: Path | None) -> int:
    """Run ``work`` in the environment; the exit code says what happened."""
    reason = chroot_mod.unavailable_reason()
    if reason is not None:
        say(f"skipped: the real-window tier {reason}")
        return 0
    jail: Chroot | None = None
    try:
        with environment(zip_path) as (jail, sim):
            return work(jail, sim)
    except chroot_mod.Unavailable as error:
        say(f"error: could not prepare the chroot: {error}")
        return 2
    except GuiFailure as error:
        say(f"error: could not set up the window: {error}")
        return 2
    except Stop as stop:
        say(f"stopped by {stop}; processes ended and mounts removed")
        return 130
    finally:
        if keep_logs is not None and jail is not None and (jail.run_dir / "logs").is_dir():
            shutil.copytree(jail.run_dir / "logs", keep_logs, dirs_exist_ok=True)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gui-test", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, required=True, help="the built extension zip")
    parser.add_argument("--only", nargs="*", default=[], help="run only these scenarios")
    parser.add_argument("--keep-logs", type=Path, help="copy Blender's and Xvfb's logs here")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="gui-test: %(message)s")
    started = time.monotonic()

    def work(jail: Chroot, sim: Hitem3DSimulator) -> int:
        failures = run_scenarios(jail, sim, args.only)
        say(f"{'FAILED' if failures else 'passed'}: {failures} failure(s) in {time.monotonic() - started:.0f} s")
        return 1 if failures else 0

    return guarded(work, args.zip, args.keep_logs)

