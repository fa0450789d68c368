#!/usr/bin/env python3
"""One entry point for contributors and CI of "Hitem3D for Blender".

    python build.py                       set up .venv, build + validate dist/<id>-<version>.zip
    python build.py test [--bpy X.Y] ...  run pytest against bpy 4.5 (default), 4.2 or 5.0
    python build.py typecheck [...]       run mypy (configured in pyproject.toml)
    python build.py demo                  build the zip, then run `python -m tests.demo`

Only the standard library is imported at top level, so a fresh clone with
nothing but a system Python 3.11 can run this file. Everything else (Blender
as a Python module, pytest, mypy, ...) is installed into per-bpy virtual
environments at the repository root.

The test suite imports this module too (`import build; build.build_zip(tmp)`);
it then runs inside a venv that already has bpy, and nothing here creates a
venv unless a command-line subcommand asks for one.
"""

# Lazy annotations: an older interpreter can still parse this file and reach the
# friendly "needs Python 3.11" message instead of failing on `X | None`.
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

REPO_ROOT = Path(__file__).resolve().parent
PACKAGE_NAME = "hitem3d_blender"
PACKAGE_DIR = REPO_ROOT / PACKAGE_NAME
MANIFEST_NAME = "blender_manifest.toml"
MANIFEST_PATH = REPO_ROOT / MANIFEST_NAME
DIST_DIR = REPO_ROOT / "dist"

# bpy wheels on PyPI exist for exactly one Python minor version per Blender
# release; 4.2, 4.5 and 5.0 are all built for 3.11.
REQUIRED_PYTHON = (3, 11)
REQUIRED_PYTHON_NAME = "python3.11"
# Set on a re-exec under python3.11 so a misconfigured PATH cannot loop.
REEXEC_ENV = "BUILD_PY_REEXEC"

DEFAULT_BPY = "4.5"


@dataclass(frozen=True)
class BpyEnv:
    """Where the venv for one Blender version lives and what it installs."""

    venv_dir: Path
    requirements: Path


# 4.5 is the default environment (`.venv`, requirements-dev.txt) that a
# contributor uses day to day; the others exist to prove compatibility.
BPY_ENVS: dict[str, BpyEnv] = {
    "4.5": BpyEnv(REPO_ROOT / ".venv", REPO_ROOT / "requirements-dev.txt"),
    "4.2": BpyEnv(REPO_ROOT / ".venv-bpy4.2", REPO_ROOT / "requirements-bpy-4.2.txt"),
    "5.0": BpyEnv(REPO_ROOT / ".venv-bpy5.0", REPO_ROOT / "requirements-bpy-5.0.txt"),
}

# The stamp records what a venv was installed from; a different digest means a
# requirements file (or the install recipe below) changed, so pip runs again.
STAMP_NAME = "build-py-requirements.sha256"
# Bump when the way venvs are installed changes, to force a reinstall.
INSTALL_RECIPE = "1"

# Files in hitem3d_blender/ that Blender does not need at runtime. Staging a
# filtered copy (rather than pointing blender_ext at the source tree) keeps
# caches and editor droppings out of the zip whatever the manifest says.
STAGE_IGNORE = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".*",
    "*.pyi",
    "py.typed",
    "*.orig",
    "*.rej",
    "*~",
    "*.swp",
    "*.blend[1-9]",
    MANIFEST_NAME,  # the top-level manifest is the only one that counts
)


class BuildError(Exception):
    """A failure whose message is meant for the user as is (no traceback)."""


# --------------------------------------------------------------------------
# Small helpers


def log(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def run(cmd: Sequence[str | Path], *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> int:
    """Run a command with its output going straight to the terminal; return its exit code."""
    words = [str(part) for part in cmd]
    log("$ " + " ".join(words))
    return subprocess.run(words, cwd=cwd, env=env, check=False).returncode


def run_or_fail(cmd: Sequence[str | Path], what: str) -> None:
    code = run(cmd)
    if code != 0:
        raise BuildError(f"{what} failed (exit code {code})")


def venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def is_same_interpreter(python: Path) -> bool:
    # Compare without resolving symlinks: a venv's python is a symlink to the
    # base interpreter, yet it is a different environment.
    return Path(python).absolute() == Path(sys.executable).absolute()


def running_inside(venv_dir: Path) -> bool:
    return Path(sys.prefix).resolve() == venv_dir.resolve()


# --------------------------------------------------------------------------
# Making sure we run on Python 3.11


def ensure_python_311(argv: Sequence[str]) -> None:
    """Return if this is Python 3.11; otherwise re-run under python3.11 or exit with a clear message."""
    if sys.version_info[:2] == REQUIRED_PYTHON:
        return
    found = ".".join(str(part) for part in sys.version_info[:3])
    if os.environ.get(REEXEC_ENV):
        sys.exit(f"build.py: error: {REQUIRED_PYTHON_NAME} on PATH runs Python {found}, not 3.11")
    candidate = shutil.which(REQUIRED_PYTHON_NAME)
    if candidate is None:
        sys.exit(
            f"build.py: error: Python 3.11 is required (Blender's bpy wheels are built for it), "
            f"but this is Python {found} and no {REQUIRED_PYTHON_NAME} is on PATH"
        )
    log(f"Python {found} is not 3.11; re-running with {candidate}")
    env = dict(os.environ, **{REEXEC_ENV: "1"})
    sys.exit(subprocess.run([candidate, str(Path(__file__).resolve()), *argv], env=env, check=False).returncode)


def base_python() -> str:
    """The interpreter to create venvs from: the base one even if we run inside some venv."""
    if sys.prefix != sys.base_prefix:
        return str(getattr(sys, "_base_executable", sys.executable))
    return sys.executable


# --------------------------------------------------------------------------
# Virtual environments


def requirement_files(requirements: Path) -> list[Path]:
    """The requirements file plus every file it pulls in with -r/-c, recursively."""
    seen: list[Path] = []
    pending = [requirements]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        if not current.is_file():
            raise BuildError(f"requirements file not found: {current}")
        seen.append(current)
        for line in current.read_text(encoding="utf-8").splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] in ("-r", "--requirement", "-c", "--constraint"):
                pending.append((current.parent / words[1]).resolve())
    return seen


def requirements_digest(requirements: Path) -> str:
    digest = hashlib.sha256(f"recipe={INSTALL_RECIPE};python={REQUIRED_PYTHON}".encode())
    for path in requirement_files(requirements):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def venv_is_usable(venv_dir: Path) -> bool:
    """True if the venv's interpreter starts and is 3.11 (a moved or upgraded base python breaks venvs)."""
    python = venv_python(venv_dir)
    if not python.exists():
        return False
    check = "import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)"
    return subprocess.run([str(python), "-c", check], capture_output=True, check=False).returncode == 0


def pip_install_command(python: Path, requirements: Path) -> list[str]:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)]
    if not sys.stdout.isatty():
        # A progress bar for a ~1 GB wheel turns a CI log into noise.
        cmd += ["--progress-bar", "off"]
    return cmd


def ensure_venv(bpy: str = DEFAULT_BPY) -> Path:
    """Create or refresh the venv for `bpy` if needed; return its python.

    If we already run inside that venv, use it as is: re-installing into the
    interpreter that is running this very script is what "recursing" would be.
    """
    env = BPY_ENVS[bpy]
    python = venv_python(env.venv_dir)
    digest = requirements_digest(env.requirements)
    stamp = env.venv_dir / STAMP_NAME

    if running_inside(env.venv_dir):
        log(f"using the running interpreter {sys.executable} (already in {env.venv_dir.name}/)")
        if not (stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest):
            log(f"warning: {env.requirements.name} changed since {env.venv_dir.name}/ was installed; "
                "run build.py with the system Python to refresh it")
        return Path(sys.executable)

    if not venv_is_usable(env.venv_dir):
        log(f"creating {env.venv_dir.name}/ for bpy {bpy}")
        run_or_fail([base_python(), "-m", "venv", "--clear", env.venv_dir], "creating the venv")
    elif stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest:
        return python
    else:
        log(f"{env.requirements.name} (or a file it includes) changed since {env.venv_dir.name}/ was installed; updating")

    # Drop the stamp first so an interrupted install is retried next time.
    stamp.unlink(missing_ok=True)
    log(f"installing {env.requirements.name} into {env.venv_dir.name}/ (bpy is ~1 GB; the first time takes minutes)")
    run_or_fail(pip_install_command(python, env.requirements), f"pip install -r {env.requirements.name}")
    stamp.write_text(digest + "\n", encoding="utf-8")
    return python


def python_for(bpy: str, no_venv: bool) -> Path:
    if no_venv:
        log(f"--no-venv: using the running interpreter {sys.executable}")
        return Path(sys.executable)
    return ensure_venv(bpy)


# --------------------------------------------------------------------------
# Blender's extension tool (ships inside the bpy wheel)


@dataclass(frozen=True)
class BlenderTools:
    python: Path
    blender_ext: Path
    valid_tags: Path | None
    blender_version: str


# Runs in another interpreter; find_spec locates a top-level package without
# importing it, so no Blender is started just to find a file.
_FIND_BPY_SNIPPET = (
    "import importlib.util as u; s = u.find_spec('bpy'); "
    "print(list(s.submodule_search_locations or [''])[0] if s else '')"
)


def bpy_package_dir(python: Path | None = None) -> Path:
    """Directory of the installed bpy package, for `python` (default: this interpreter)."""
    if python is None or is_same_interpreter(python):
        spec = importlib.util.find_spec("bpy")
        location = list(spec.submodule_search_locations or [""])[0] if spec else ""
        where = sys.executable
    else:
        result = subprocess.run(
            [str(python), "-c", _FIND_BPY_SNIPPET], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BuildError(f"could not run {python}:\n{result.stderr.strip()}")
        location = result.stdout.strip()
        where = str(python)
    if not location:
        raise BuildError(f"bpy is not installed for {where} (run `python build.py` to set up .venv)")
    return Path(location)


def find_blender_tools(python: Path | None = None) -> BlenderTools:
    """Locate blender_ext.py and Blender's tag list inside the bpy wheel of `python`."""
    bpy_dir = bpy_package_dir(python)
    # The wheel keeps Blender's data in bpy/<X.Y>/; exactly one is expected.
    tools = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if len(tools) != 1:
        raise BuildError(f"expected one blender_ext.py under {bpy_dir}, found {len(tools)}")
    blender_ext = tools[0]
    scripts_dir = blender_ext.parents[3]
    tags = scripts_dir / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    return BlenderTools(
        python=Path(python) if python is not None else Path(sys.executable),
        blender_ext=blender_ext,
        # Standalone, the tool checks no tags; Blender itself passes this list.
        valid_tags=tags if tags.is_file() else None,
        blender_version=scripts_dir.parent.name,
    )


def run_blender_ext(tools: BlenderTools, subcommand: str, args: Sequence[str | Path]) -> str:
    """Run `blender_ext.py <subcommand> ...`; return its output, or raise with it on failure."""
    cmd = [str(tools.python), str(tools.blender_ext), subcommand, *(str(arg) for arg in args)]
    if tools.valid_tags is not None:
        cmd += ["--valid-tags", str(tools.valid_tags)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise BuildError(
            f"blender_ext.py {subcommand} (Blender {tools.blender_version}) failed "
            f"with exit code {result.returncode}:\n{output}"
        )
    return output


# --------------------------------------------------------------------------
# Building the extension


def read_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    import tomllib  # 3.11+, imported here so older interpreters reach the version check

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise BuildError(f"cannot read {path.name}: {error}") from error


def zip_name(manifest: dict[str, Any] | None = None) -> str:
    """The file name blender_ext gives the package: `<id>-<version>.zip`."""
    data = read_manifest() if manifest is None else manifest
    return f"{data['id']}-{data['version']}.zip"


def stage_extension(stage_dir: Path) -> Path:
    """Copy what Blender needs at runtime (package + manifest) into `stage_dir`; return it."""
    if not (PACKAGE_DIR / "__init__.py").is_file():
        raise BuildError(f"{PACKAGE_NAME}/__init__.py is missing; there is no add-on to build")
    shutil.copytree(PACKAGE_DIR, stage_dir, ignore=STAGE_IGNORE, dirs_exist_ok=True)
    shutil.copy2(MANIFEST_PATH, stage_dir / MANIFEST_NAME)
    return stage_dir


def validate_zip(zip_path: Path, python: Path | None = None) -> str:
    """Run `blender_ext.py validate` on a built package; return the tool's message."""
    return run_blender_ext(find_blender_tools(python), "validate", [zip_path])


def build_zip(output_dir: Path, python: Path | None = None, *, validate: bool = True) -> Path:
    """Build `<output_dir>/hitem3d_blender-<version>.zip` and (by default) validate it.

    `python` is the interpreter whose bpy provides blender_ext.py; by default
    the one running this code, which is right for a test suite inside a venv.
    Raises BuildError with the tool's output on failure.
    """
    tools = find_blender_tools(python)
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / zip_name()
    # A stale zip must never pass for the result of a failed build.
    target.unlink(missing_ok=True)

    with tempfile.TemporaryDirectory(prefix="hitem3d-stage-") as tmp:
        stage = stage_extension(Path(tmp) / PACKAGE_NAME)
        run_blender_ext(tools, "build", ["--source-dir", stage, "--output-dir", output_dir])

    if not target.is_file():
        raise BuildError(f"blender_ext.py build reported success but {target} does not exist")
    if validate:
        run_blender_ext(tools, "validate", [target])
    return target


# --------------------------------------------------------------------------
# Subcommands (each returns the process exit code)


def cmd_build(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    log(f"building {zip_name()} from {PACKAGE_NAME}/")
    zip_path = build_zip(DIST_DIR, python)
    log(f"validated with blender_ext.py (Blender {find_blender_tools(python).blender_version})")
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    return 0


def cmd_test(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(args.bpy, args.no_venv)
    log(f"running pytest with bpy {args.bpy}")
    code = run([python, "-m", "pytest", *extra])
    if code == 5:
        # pytest's "no tests collected" must never look like a green run.
        log("error: pytest collected no tests (exit code 5)")
    return code


def cmd_typecheck(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    # With no file arguments mypy checks `files` from pyproject.toml.
    return run([python, "-m", "mypy", *extra])


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    zip_path = build_zip(DIST_DIR, python)
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    # The demo finds the zip in dist/; the variable saves it guessing the version.
    env = dict(os.environ, HITEM3D_EXTENSION_ZIP=str(zip_path))
    return run([python, "-m", "tests.demo", *extra], env=env)


if TYPE_CHECKING:  # only for mypy: `list[str]` at runtime would break Python < 3.9 before the version check
    Command = Callable[[argparse.Namespace, list[str]], int]

# Subcommands that pass unknown arguments through to the tool they run.
PASSTHROUGH = {"test", "typecheck", "demo"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build, test and type-check the Hitem3D Blender extension. "
        "Virtual environments with Blender's bpy module are created on demand "
        "(.venv for bpy 4.5, .venv-bpy4.2, .venv-bpy5.0) and refreshed when a "
        "requirements file changes.",
        epilog="Without a subcommand, `build` runs.",
    )
    parser.add_argument(
        "--no-venv",
        action="store_true",
        help="use the running interpreter as is instead of the managed venv "
        "(it must already have the dev requirements)",
    )
    parser.set_defaults(command="build", func=cmd_build)
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND")

    build = sub.add_parser(
        "build",
        help="set up .venv, build dist/<id>-<version>.zip and validate it (default)",
        description="Set up .venv if missing or stale, stage hitem3d_blender/ with "
        "blender_manifest.toml, build the zip with Blender's blender_ext.py into dist/ "
        "and validate it.",
    )
    build.set_defaults(command="build", func=cmd_build)

    test = sub.add_parser(
        "test",
        usage="build.py test [-h] [--bpy {4.2,4.5,5.0}] [pytest args ...]",
        allow_abbrev=False,  # so pytest options are never mistaken for ours
        help="run pytest in the venv for a bpy version; extra arguments go to pytest",
        description="Set up the venv for the chosen bpy and run `python -m pytest` from the "
        "repository root. Unknown arguments (or everything after `--`) are passed to pytest. "
        "Exits with pytest's code; 'no tests collected' (5) is an error.",
    )
    test.add_argument("--bpy", choices=sorted(BPY_ENVS), default=DEFAULT_BPY, help="Blender version (default: %(default)s)")
    test.set_defaults(command="test", func=cmd_test)

    typecheck = sub.add_parser(
        "typecheck",
        usage="build.py typecheck [-h] [mypy args ...]",
        allow_abbrev=False,
        help="run mypy over hitem3d_blender/ (and build.py) in .venv; extra arguments go to mypy",
        description="Run mypy with the configuration in pyproject.toml; bpy is typed by the "
        "fake-bpy-module stubs installed beside the real bpy.",
    )
    typecheck.set_defaults(command="typecheck", func=cmd_typecheck)

    demo = sub.add_parser(
        "demo",
        usage="build.py demo [-h] [demo args ...]",
        allow_abbrev=False,
        help="build the zip, then run `python -m tests.demo` in .venv",
        description="Set up .venv, build the zip into dist/, then run `python -m tests.demo` "
        "from the repository root (it installs the zip into an isolated Blender and "
        "imports a sample task). HITEM3D_EXTENSION_ZIP holds the zip's path.",
    )
    demo.set_defaults(command="demo", func=cmd_demo)
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = build_parser()
    args, extra = parser.parse_known_args(list(argv))
    if extra and args.command not in PASSTHROUGH:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # `build.py test -- -k foo`: the separator is ours, not pytest's.
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return args, extra


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ensure_python_311(argv)
    args, extra = parse_args(argv)
    func: Command = args.func
    try:
        return func(args, extra)
    except BuildError as error:
        print(f"build.py: error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("build.py: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
