#!/usr/bin/env python3
"""One entry point for contributors and CI of "Hitem3D for Blender".

    python build.py                       set up .venv, build + validate dist/<id>-<version>.zip
    python build.py test [--bpy X.Y] ...  run pytest against bpy 4.5 (default), 4.2, 5.0,
                                          5.1, 5.2 or 5.3
    python build.py typecheck [...]       run mypy (configured in pyproject.toml) against the
                                          Blender 4.2 stubs and against the newest stubs
    python build.py demo                  build the zip, then run `python -m tests.demo`
    python build.py sandbox [--port N]    start a local Hitem3D stand-in to try the extension
                                          in your own Blender without an account (no venv)
    python build.py bench [--quick]       build the zip, then run `python -m benchmarks`
    python build.py gui-test [...]        build the zip, then run it in a real Blender window
                                          (`python -m tests.gui`; a Debian 13 chroot, needs root)
    python build.py screenshots           regenerate docs/images/*.png from that window
    python build.py repo                  release: check CHANGELOG.md, build the zip into
                                          dist/repo/ and generate Blender's repository listing

Only the standard library is imported at top level, so a fresh clone with
nothing but a system Python 3.11 (or newer) can run this file. Everything else
(Blender as a Python module, pytest, mypy, ...) is installed into per-bpy
virtual environments at the repository root, each made with the Python its
bpy is built for: 3.11 for Blender 4.2 to 5.0, 3.13 for 5.1 and newer, found
as pythonX.Y on PATH or among pyenv's versions.

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
import json
import os
import re
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
CHANGELOG_NAME = "CHANGELOG.md"
CHANGELOG_PATH = REPO_ROOT / CHANGELOG_NAME
# The extension repository users add in Blender: zips plus index.json, for any static host.
REPO_DIR = DIST_DIR / "repo"
REPO_INDEX_NAME = "index.json"
# Superseded zips move here: still downloadable, no longer listed (see archive_superseded).
REPO_ARCHIVE_NAME = "archive"

# build.py itself needs tomllib (3.11+); any newer Python runs it as well, and
# each venv below is created from the interpreter its bpy is built for.
MIN_PYTHON = (3, 11)
# Set on a re-exec under python3.11 so a misconfigured PATH cannot loop.
REEXEC_ENV = "BUILD_PY_REEXEC"

DEFAULT_BPY = "4.5"


@dataclass(frozen=True)
class BpyEnv:
    """Where the venv for one Blender version lives, what it installs and which
    Python it needs (bpy wheels exist for one Python minor version only)."""

    venv_dir: Path
    requirements: Path
    python: tuple[int, int]


PY311 = (3, 11)  # Blender 4.2 to 5.0
PY313 = (3, 13)  # Blender 5.1 and newer

# 4.5 is the default environment (`.venv`, requirements-dev.txt) that a
# contributor uses day to day; the others exist to prove compatibility.
# Keep this table, the manifest's range and the README's "tested versions" in
# step: tests/blender/test_versions.py checks that they agree.
BPY_ENVS: dict[str, BpyEnv] = {
    "4.2": BpyEnv(REPO_ROOT / ".venv-bpy4.2", REPO_ROOT / "requirements-bpy-4.2.txt", PY311),
    "4.5": BpyEnv(REPO_ROOT / ".venv", REPO_ROOT / "requirements-dev.txt", PY311),
    "5.0": BpyEnv(REPO_ROOT / ".venv-bpy5.0", REPO_ROOT / "requirements-bpy-5.0.txt", PY311),
    "5.1": BpyEnv(REPO_ROOT / ".venv-bpy5.1", REPO_ROOT / "requirements-bpy-5.1.txt", PY313),
    "5.2": BpyEnv(REPO_ROOT / ".venv-bpy5.2", REPO_ROOT / "requirements-bpy-5.2.txt", PY313),
    "5.3": BpyEnv(REPO_ROOT / ".venv-bpy5.3", REPO_ROOT / "requirements-bpy-5.3.txt", PY313),
}

# Type checking against the newest Blender API: mypy and the newest stubs only
# (no bpy), so it is small. The default venv checks against the 4.2 stubs.
STUBS_LATEST_ENV = BpyEnv(REPO_ROOT / ".venv-stubs-latest", REPO_ROOT / "requirements-stubs-latest.txt", PY311)
# The newest Blender runs Python 3.13: that pass also checks the code for it.
STUBS_LATEST_PYTHON = "3.13"

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
# Finding the interpreter each Blender needs


def version_text(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


# Runs in the candidate: its X.Y, and whether it is a free-threaded build
# (bpy wheels are built for the regular one).
_PYTHON_PROBE = (
    "import sys, sysconfig; "
    "print(sys.version_info[0], sys.version_info[1], int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))"
)


def runs_python(candidate: str | Path, version: tuple[int, int]) -> bool:
    """True if `candidate` starts and is a regular Python `version` (a pyenv shim
    for a version that is not active exits with an error, so it is tried, not trusted)."""
    try:
        result = subprocess.run(
            [str(candidate), "-c", _PYTHON_PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.split() == [str(version[0]), str(version[1]), "0"]


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def python_candidates(version: tuple[int, int]) -> list[str]:
    """Where Python `version` may be, best first: this interpreter, `pythonX.Y`
    on PATH, then pyenv's installed versions (newest patch release first)."""
    name = f"python{version_text(version)}"
    candidates: list[str] = []
    if sys.version_info[:2] == version:
        candidates.append(base_python())
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    installed = pyenv_root().glob(f"versions/{version_text(version)}*/bin/{name}")
    candidates += [str(path) for path in sorted(installed, key=lambda path: version_key(path.parents[1].name), reverse=True)]
    return list(dict.fromkeys(candidates))


def missing_python_message(version: tuple[int, int], purpose: str) -> str:
    wanted = version_text(version)
    return (
        f"{purpose} needs Python {wanted}, but no python{wanted} was found on PATH or in "
        f"{pyenv_root() / 'versions'}. Install it (for example `pyenv install {wanted}`), or put "
        f"python{wanted} on PATH, then run this again"
    )


def find_python(version: tuple[int, int], purpose: str) -> str:
    """An interpreter that runs Python `version`, or BuildError saying how to get one."""
    for candidate in python_candidates(version):
        if runs_python(candidate, version):
            return candidate
    raise BuildError(missing_python_message(version, purpose))


def ensure_supported_python(argv: Sequence[str]) -> None:
    """Return if this Python can run build.py; otherwise re-run under Python 3.11 or exit with a clear message."""
    if sys.version_info[:2] >= MIN_PYTHON:
        return
    found = version_text(sys.version_info[:3])
    if os.environ.get(REEXEC_ENV):
        sys.exit(f"build.py: error: the re-run interpreter is Python {found}, not {version_text(MIN_PYTHON)}")
    try:
        candidate = find_python(MIN_PYTHON, f"build.py (this is Python {found})")
    except BuildError as error:
        sys.exit(f"build.py: error: {error}")
    log(f"Python {found} is too old for build.py; re-running with {candidate}")
    env = dict(os.environ, **{REEXEC_ENV: "1"})
    sys.exit(subprocess.run([candidate, str(Path(__file__).resolve()), *argv], env=env, check=False).returncode)


def base_python() -> str:
    """This interpreter outside any venv: the one to create venvs from."""
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


def requirements_digest(requirements: Path, python: tuple[int, int] = PY311) -> str:
    digest = hashlib.sha256(f"recipe={INSTALL_RECIPE};python={python}".encode())
    for path in requirement_files(requirements):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def venv_is_usable(venv_dir: Path, version: tuple[int, int]) -> bool:
    """True if the venv's interpreter starts and is Python `version` (a moved or
    upgraded base python breaks venvs)."""
    python = venv_python(venv_dir)
    return python.exists() and runs_python(python, version)


def pip_install_command(python: Path, requirements: Path) -> list[str]:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)]
    if not sys.stdout.isatty():
        # A progress bar for a ~1 GB wheel turns a CI log into noise.
        cmd += ["--progress-bar", "off"]
    return cmd


def ensure_venv(bpy: str = DEFAULT_BPY) -> Path:
    """Create or refresh the venv for `bpy` if needed; return its python."""
    return ensure_env(BPY_ENVS[bpy], f"bpy {bpy}")


def ensure_env(env: BpyEnv, purpose: str) -> Path:
    """Create or refresh the venv `env` if needed; return its python.

    If we already run inside that venv, use it as is: re-installing into the
    interpreter that is running this very script is what "recursing" would be.
    """
    python = venv_python(env.venv_dir)
    digest = requirements_digest(env.requirements, env.python)
    stamp = env.venv_dir / STAMP_NAME

    if running_inside(env.venv_dir):
        log(f"using the running interpreter {sys.executable} (already in {env.venv_dir.name}/)")
        if not (stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest):
            log(f"warning: {env.requirements.name} changed since {env.venv_dir.name}/ was installed; "
                "run build.py with the system Python to refresh it")
        return Path(sys.executable)

    if not venv_is_usable(env.venv_dir, env.python):
        # Found before anything is created, so a missing interpreter costs nothing.
        base = find_python(env.python, purpose)
        log(f"creating {env.venv_dir.name}/ for {purpose} with Python {version_text(env.python)} ({base})")
        run_or_fail([base, "-m", "venv", "--clear", env.venv_dir], "creating the venv")
    elif stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest:
        return python
    else:
        log(f"{env.requirements.name} (or a file it includes) changed since {env.venv_dir.name}/ was installed; updating")

    # Drop the stamp first so an interrupted install is retried next time.
    stamp.unlink(missing_ok=True)
    # NOTE: sizes as `du -sh` measures the venvs: 1.1 to 1.2 GB with bpy, 0.18 GB for the stubs alone.
    what = ("with bpy, ~1.2 GB; the first time takes minutes" if env in BPY_ENVS.values()
            else "mypy and the Blender stubs, no bpy: ~0.2 GB")
    log(f"installing {env.requirements.name} into {env.venv_dir.name}/ ({what})")
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


# Only these subcommands accept --valid-tags; server-generate rejects it.
_TAG_CHECKING_SUBCOMMANDS = frozenset({"build", "validate"})


def run_blender_ext(tools: BlenderTools, subcommand: str, args: Sequence[str | Path]) -> str:
    """Run `blender_ext.py <subcommand> ...`; return its output, or raise with it on failure."""
    cmd = [str(tools.python), str(tools.blender_ext), subcommand, *(str(arg) for arg in args)]
    if tools.valid_tags is not None and subcommand in _TAG_CHECKING_SUBCOMMANDS:
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


# A version Blender accepts (semantic versioning) and that is safe inside TOML quotes.
_VERSION_TEXT = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]*)?")
_MANIFEST_VERSION_LINE = re.compile(r'^version\s*=\s*"[^"\n]*"', re.MULTILINE)


def set_manifest_version(manifest_path: Path, version: str) -> None:
    """Rewrite the `version = "..."` line of a (staged) manifest, keeping everything else as is."""
    if not _VERSION_TEXT.fullmatch(version):
        raise BuildError(f"{version!r} is not a version like 1.2.3")
    text = manifest_path.read_text(encoding="utf-8")
    new_text, count = _MANIFEST_VERSION_LINE.subn(lambda _: f'version = "{version}"', text, count=1)
    if count != 1:
        raise BuildError(f"no top-level version line in {manifest_path.name}")
    manifest_path.write_text(new_text, encoding="utf-8")
    if read_manifest(manifest_path).get("version") != version:
        raise BuildError(f"could not set the version in {manifest_path.name} to {version}")


def stage_extension(stage_dir: Path, *, version: str | None = None) -> Path:
    """Copy what Blender needs at runtime (package + manifest) into `stage_dir`; return it.

    With `version`, the staged manifest says that version instead (the real
    manifest stays the one place the version lives).
    """
    if not (PACKAGE_DIR / "__init__.py").is_file():
        raise BuildError(f"{PACKAGE_NAME}/__init__.py is missing; there is no add-on to build")
    shutil.copytree(PACKAGE_DIR, stage_dir, ignore=STAGE_IGNORE, dirs_exist_ok=True)
    shutil.copy2(MANIFEST_PATH, stage_dir / MANIFEST_NAME)
    if version is not None:
        set_manifest_version(stage_dir / MANIFEST_NAME, version)
    return stage_dir


def validate_zip(zip_path: Path, python: Path | None = None) -> str:
    """Run `blender_ext.py validate` on a built package; return the tool's message."""
    return run_blender_ext(find_blender_tools(python), "validate", [zip_path])


def build_zip(
    output_dir: Path, python: Path | None = None, *, validate: bool = True, version: str | None = None
) -> Path:
    """Build `<output_dir>/hitem3d_blender-<version>.zip` and (by default) validate it.

    `python` is the interpreter whose bpy provides blender_ext.py; by default
    the one running this code, which is right for a test suite inside a venv.
    `version` replaces the manifest's version in the staged copy only.
    Raises BuildError with the tool's output on failure.
    """
    tools = find_blender_tools(python)
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    if version is not None:
        manifest = dict(manifest, version=version)
    target = output_dir / zip_name(manifest)
    # A stale zip must never pass for the result of a failed build.
    target.unlink(missing_ok=True)

    with tempfile.TemporaryDirectory(prefix="hitem3d-stage-") as tmp:
        stage = stage_extension(Path(tmp) / PACKAGE_NAME, version=version)
        run_blender_ext(tools, "build", ["--source-dir", stage, "--output-dir", output_dir])

    if not target.is_file():
        raise BuildError(f"blender_ext.py build reported success but {target} does not exist")
    if validate:
        run_blender_ext(tools, "validate", [target])
    return target


# --------------------------------------------------------------------------
# The changelog: every release has a dated entry


# `## 0.2.0 - 2025-01-31`, or Keep a Changelog's `## [0.2.0] - 2025-01-31`.
# `## [Unreleased]` is a section too; it simply never matches a version.
_CHANGELOG_HEADING = re.compile(r"##\s+\[?(?P<version>[^\]\s]+)\]?(?P<rest>.*)")
_CHANGELOG_DATE = re.compile(r"\s+-\s+\d{4}-\d{2}-\d{2}\s*")
_CHANGELOG_ITEM = ("- ", "* ", "+ ")


def changelog_sections(text: str) -> dict[str, tuple[str, list[str]]]:
    """The `## <version>` sections of a changelog: version -> (rest of the heading, body lines)."""
    sections: dict[str, tuple[str, list[str]]] = {}
    body: list[str] | None = None
    for line in text.splitlines():
        match = _CHANGELOG_HEADING.fullmatch(line.rstrip())
        if match is not None:
            body = []
            sections.setdefault(match["version"], (match["rest"], body))
        elif line.startswith("# "):
            body = None  # the document title and its preamble belong to no version
        elif body is not None:
            body.append(line)
    return sections


def changelog_problem(version: str, changelog: Path = CHANGELOG_PATH) -> str | None:
    """Why `changelog` does not document `version` yet, or None if it has a dated entry with changes."""
    name = changelog.name
    heading = f"'## {version} - YYYY-MM-DD'"
    try:
        text = changelog.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{name} not found: create it with a {heading} section listing the user-facing changes"
    except OSError as error:
        return f"cannot read {name}: {error}"
    section = changelog_sections(text).get(version)
    if section is None:
        return f"{name} has no entry for version {version}: add a {heading} section listing the user-facing changes"
    rest, body = section
    if not _CHANGELOG_DATE.fullmatch(rest):
        return f"{name}: the heading of version {version} needs its release date, as in {heading}"
    if not any(line.lstrip().startswith(_CHANGELOG_ITEM) for line in body):
        return f"{name}: the entry for version {version} lists no changes; add at least one '- ...' line"
    return None


# --------------------------------------------------------------------------
# The extension repository (what Blender's Get Extensions follows)


def version_key(version: str) -> tuple[int, ...]:
    """The numeric release part of a version, for ordering: "1.10.0-rc1" -> (1, 10, 0)."""
    match = re.match(r"[0-9]+(?:\.[0-9]+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def listed_zips(repo_dir: Path, pkg_id: str) -> dict[str, Path]:
    """The zips of `pkg_id` at the top of `repo_dir` (the ones a listing offers), by version."""
    prefix = f"{pkg_id}-"
    return {path.name[len(prefix) : -len(".zip")]: path for path in sorted(repo_dir.glob(f"{prefix}*.zip"))}


def refuse_older_release(repo_dir: Path, pkg_id: str, version: str) -> None:
    # NOTE: Blender offers any listed version that differs from the installed one
    # as an update, so listing an older version would downgrade every user.
    newer = [other for other in listed_zips(repo_dir, pkg_id) if version_key(other) > version_key(version)]
    if newer:
        latest = max(newer, key=version_key)
        raise BuildError(
            f"{repo_dir} already offers {pkg_id} {latest}, newer than {version}; Blender would "
            f"offer {version} as an update and downgrade users. Release a version above {latest}"
        )


def archive_superseded(repo_dir: Path, pkg_id: str, keep: Path) -> list[Path]:
    """Move the other zips of `pkg_id` out of the listing into `archive/`; return their new paths.

    NOTE: Blender's repository format holds one entry per extension (per Blender
    version range): with two versions listed, server-generate reports duplicates
    and Blender shows the last entry yet installs the first. So the listing offers
    only the newest; older zips stay on the host, downloadable for Install from Disk.
    """
    archive = repo_dir / REPO_ARCHIVE_NAME
    moved: list[Path] = []
    for path in listed_zips(repo_dir, pkg_id).values():
        if path.resolve() == keep.resolve():
            continue
        archive.mkdir(exist_ok=True)
        moved.append(path.replace(archive / path.name))
    return moved


def check_listing(index: Path, pkg_id: str, version: str, tool_output: str) -> None:
    """Make sure the generated listing offers exactly `version` of `pkg_id`.

    server-generate skips an archive it cannot read with only a message, so its
    exit code alone proves nothing.
    """
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        listed = [item.get("version") for item in data["data"] if item.get("id") == pkg_id]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BuildError(f"blender_ext.py server-generate wrote no usable {index}: {error}\n{tool_output}") from error
    if listed != [version]:
        raise BuildError(f"{index} lists {pkg_id} versions {listed}, expected only {version}:\n{tool_output}")


def build_repo(
    repo_dir: Path = REPO_DIR,
    *,
    version_override: str | None = None,
    changelog: Path = CHANGELOG_PATH,
    python: Path | None = None,
) -> Path:
    """Release into `repo_dir`; return the path of its `index.json`.

    Refuses (BuildError) a version without a CHANGELOG.md entry or older than
    the one already listed; then builds and validates the zip, moves superseded
    zips to `archive/`, and has Blender's `blender_ext.py server-generate` write
    `index.json` and `index.html`. `version_override` releases the current
    source under another version without touching blender_manifest.toml (the
    tests publish an update this way).
    """
    manifest = read_manifest()
    pkg_id = str(manifest["id"])
    version = version_override if version_override is not None else str(manifest["version"])
    problem = changelog_problem(version, changelog)
    if problem is not None:
        raise BuildError(f"refusing to release {pkg_id} {version}: {problem}")

    repo_dir = Path(repo_dir).resolve()
    repo_dir.mkdir(parents=True, exist_ok=True)
    refuse_older_release(repo_dir, pkg_id, version)
    tools = find_blender_tools(python)
    index = repo_dir / REPO_INDEX_NAME
    # A stale listing must never pass for the result of a failed release.
    for stale in (index, repo_dir / "index.html"):
        stale.unlink(missing_ok=True)

    if version in listed_zips(repo_dir, pkg_id):
        # Blender offers an update only when the version differs.
        log(f"replacing the {version} zip: whoever installed it is not offered this build; bump the version for changes")
    zip_path = build_zip(repo_dir, python, version=version)
    for moved in archive_superseded(repo_dir, pkg_id, keep=zip_path):
        log(f"moved {moved.name} to {REPO_ARCHIVE_NAME}/ (superseded by {version}, no longer listed)")
    output = run_blender_ext(tools, "server-generate", ["--repo-dir", repo_dir, "--html"])
    check_listing(index, pkg_id, version, output)
    return index


# --------------------------------------------------------------------------
# Subcommands (each returns the process exit code)


def cmd_build(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    log(f"building {zip_name()} from {PACKAGE_NAME}/")
    zip_path = build_zip(DIST_DIR, python)
    log(f"validated with blender_ext.py (Blender {find_blender_tools(python).blender_version})")
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    # NOTE: a dev build only mentions a missing changelog entry. The version is
    # bumped before its entry is written, and blocking every build (and the test
    # suite, which builds too) meanwhile helps no one; `build.py repo`, the only
    # way to publish, refuses instead.
    problem = changelog_problem(str(read_manifest()["version"]), CHANGELOG_PATH)
    if problem is not None:
        log(f"note: {problem} (`build.py repo` refuses to release without it)")
    return 0


def cmd_repo(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    log(f"releasing {zip_name()} into {REPO_DIR}")
    index = build_repo(REPO_DIR, changelog=CHANGELOG_PATH, python=python)
    zips = sorted(path.name for path in REPO_DIR.glob("*.zip"))
    log(f"validated with blender_ext.py (Blender {find_blender_tools(python).blender_version}); listed: {', '.join(zips)}")
    log(f"repository listing: {index}")
    log(f"publish all of {REPO_DIR}/ to a static host; users add <its URL>/{REPO_INDEX_NAME} in Blender")
    return 0


def cmd_test(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(args.bpy, args.no_venv)
    log(f"running pytest with bpy {args.bpy}")
    # NOTE: faulthandler prints every thread's Python stack if Blender
    # crashes. A crash is a failure like any other and is never run again
    # (docs/threads-in-blender.md has the one we found).
    code = run([python, "-X", "faulthandler", "-m", "pytest", *extra])
    if code < 0:
        log(f"error: pytest was killed by signal {-code}: Blender crashed")
    if code == 5:
        # pytest's "no tests collected" must never look like a green run.
        log("error: pytest collected no tests (exit code 5)")
    return code


def env_is_current(env: BpyEnv) -> bool:
    """True if `env` exists and was installed from its requirements as they are now."""
    stamp = env.venv_dir / STAMP_NAME
    return (
        stamp.is_file()
        and stamp.read_text(encoding="utf-8").strip() == requirements_digest(env.requirements, env.python)
        and venv_is_usable(env.venv_dir, env.python)
    )


def cmd_typecheck(args: argparse.Namespace, extra: list[str]) -> int:
    """mypy twice: against the oldest supported Blender API (the 4.2 stubs in the
    default venv, so nothing newer is used by accident) and against the newest
    stubs for Python 3.13 (so nothing Blender or Python removed since is used)."""
    python = python_for(DEFAULT_BPY, args.no_venv)
    # With no file arguments mypy checks `files` from pyproject.toml.
    log("mypy with the Blender 4.2 API stubs (the oldest supported Blender), Python 3.11")
    code = run([python, "-m", "mypy", *extra])
    if args.no_venv and not env_is_current(STUBS_LATEST_ENV):
        log(f"--no-venv: skipped mypy with the newest Blender stubs ({STUBS_LATEST_ENV.venv_dir.name}/ "
            "is not set up); run `python build.py typecheck` without --no-venv for both")
        return code
    latest = venv_python(STUBS_LATEST_ENV.venv_dir) if args.no_venv else ensure_env(STUBS_LATEST_ENV, "type checking")
    log(f"mypy with the newest Blender API stubs ({STUBS_LATEST_ENV.requirements.name}), Python {STUBS_LATEST_PYTHON}")
    code_latest = run([latest, "-m", "mypy", "--python-version", STUBS_LATEST_PYTHON, *extra])
    return code or code_latest


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    zip_path = build_zip(DIST_DIR, python)
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    # The demo finds the zip in dist/; the variable saves it guessing the version.
    env = dict(os.environ, HITEM3D_EXTENSION_ZIP=str(zip_path))
    return run([python, "-m", "tests.demo"], env=env)


def cmd_sandbox(args: argparse.Namespace, extra: list[str]) -> int:
    # NOTE: the simulator is standard library only, so a user who only wants to
    # try the extension needs no venv (and no 1 GB bpy download) for it; it runs
    # in this process, so Ctrl+C reaches it alone and it stops cleanly.
    sys.path.insert(0, str(REPO_ROOT))
    # NOTE: imported by name, so mypy's check of build.py stays out of the test tree.
    sandbox = importlib.import_module("tests.sandbox")
    code: int = sandbox.main(extra)
    return code


def cmd_bench(args: argparse.Namespace, extra: list[str]) -> int:
    python = python_for(DEFAULT_BPY, args.no_venv)
    zip_path = build_zip(DIST_DIR, python)
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    return run([python, "-m", "benchmarks", "--zip", zip_path, *extra])


def cmd_gui_test(args: argparse.Namespace, extra: list[str]) -> int:
    # NOTE: the tier runs on the system's tools (chroot, Xvfb, Debian's Blender);
    # only the zip needs the venv, so a machine that cannot run it skips early.
    sys.path.insert(0, str(REPO_ROOT))
    from tests.gui import chroot

    reason = chroot.unavailable_reason()
    if reason is not None:
        log(f"gui-test skipped: the real-window tier {reason}")
        return 0
    python = python_for(DEFAULT_BPY, args.no_venv)
    zip_path = build_zip(DIST_DIR, python)
    log(f"built {zip_path} ({zip_path.stat().st_size:,} bytes)")
    module = "tests.gui" if args.command == "gui-test" else "tests.gui.pictures"
    return run([python, "-m", module, "--zip", zip_path, *extra])


if TYPE_CHECKING:  # only for mypy: `list[str]` at runtime would break Python < 3.9 before the version check
    Command = Callable[[argparse.Namespace, list[str]], int]

# Subcommands that pass unknown arguments through to the tool they run.
PASSTHROUGH = {"test", "typecheck", "sandbox", "bench", "gui-test", "screenshots"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build, test and type-check the Hitem3D Blender extension. "
        "Virtual environments with Blender's bpy module are created on demand "
        "(.venv for bpy 4.5, .venv-bpy<X.Y> for the others, each with the Python its bpy "
        "needs) and refreshed when a requirements file changes.",
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
        usage=f"build.py test [-h] [--bpy {{{','.join(sorted(BPY_ENVS))}}}] [pytest args ...]",
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
        help="run mypy over hitem3d_blender/ (and build.py) with the 4.2 and the newest Blender "
        "stubs; extra arguments go to mypy",
        description="Run mypy with the configuration in pyproject.toml twice: in .venv, where bpy is "
        "typed by the Blender 4.2 stubs (the oldest supported API), then in .venv-stubs-latest with "
        "the newest stubs and Python 3.13. Exits non-zero if either finds a problem.",
    )
    typecheck.set_defaults(command="typecheck", func=cmd_typecheck)

    demo = sub.add_parser(
        "demo",
        help="build the zip, then run `python -m tests.demo` in .venv",
        description="Set up .venv, build the zip into dist/, then run `python -m tests.demo` "
        "from the repository root: it installs the zip into an isolated headless Blender, imports "
        "a sample task from the simulator, saves dist/demo.blend and prints what it imported. "
        "It takes no arguments.",
    )
    demo.set_defaults(command="demo", func=cmd_demo)

    sandbox = sub.add_parser(
        "sandbox",
        usage="build.py sandbox [-h] [--port PORT] [--quiet]",
        allow_abbrev=False,
        add_help=False,  # `build.py sandbox --help` shows the sandbox's own options
        help="try the extension in your own Blender without a Hitem3D account: a local stand-in for Hitem3D",
        description="Start the project's Hitem3D simulator on 127.0.0.1 with ready tasks of every kind and "
        "print the API base URL, credentials and task IDs to paste into Blender; Ctrl+C stops it. Runs "
        "with this Python (standard library only, no venv).",
    )
    sandbox.set_defaults(command="sandbox", func=cmd_sandbox)

    bench = sub.add_parser(
        "bench",
        usage="build.py bench [-h] [--quick] [--only NAME ...] [--output FILE]",
        allow_abbrev=False,
        help="build the zip, then run the benchmarks (`python -m benchmarks`) in .venv",
        description="Set up .venv, build the zip into dist/, then run `python -m benchmarks` with it: "
        "main-thread cost, download speed and memory, time to scene, request economy. Prints one "
        "JSON object last; see BENCHMARKS.md. Other arguments go to the benchmarks.",
    )
    bench.set_defaults(command="bench", func=cmd_bench)

    gui_test = sub.add_parser(
        "gui-test",
        usage="build.py gui-test [-h] [--only SCENARIO ...] [--keep-logs DIR]",
        allow_abbrev=False,
        help="run the extension in a real Blender window (Debian 13 chroot, Xvfb); needs root",
        description="Build the zip, then run `python -m tests.gui`: a cached Debian 13 chroot with "
        "Debian's Blender 4.3, Xvfb and xdotool; the zip installed the way a user does; scenarios "
        "with real keyboard and mouse input against the simulator. The chroot is made on first use "
        "(debootstrap, installed with apt-get if missing) and kept in /var/cache/hitem3d-gui/. Skips "
        "(exit 0, with a line saying why) where it cannot run: not root, not Linux, or neither "
        "debootstrap nor apt-get to install it.",
    )
    gui_test.set_defaults(command="gui-test", func=cmd_gui_test)

    screenshots = sub.add_parser(
        "screenshots",
        usage="build.py screenshots [-h] [--output DIR]",
        allow_abbrev=False,
        help="regenerate docs/images/*.png from the real Blender window (needs root)",
        description="Build the zip, then run `python -m tests.gui.pictures` in the same chroot "
        "as gui-test and save cropped pictures of the sidebar and preferences to docs/images/.",
    )
    screenshots.set_defaults(command="screenshots", func=cmd_gui_test)

    repo = sub.add_parser(
        "repo",
        help="release: build the zip into dist/repo/ and generate Blender's repository listing",
        description="Refuse unless CHANGELOG.md has a dated entry for the manifest's version, "
        "build and validate the zip into dist/repo/, move older zips of the extension to "
        "dist/repo/archive/, and write dist/repo/index.json (and index.html) with Blender's "
        "`blender_ext.py server-generate`. Upload dist/repo/ as is to any static host.",
    )
    repo.set_defaults(command="repo", func=cmd_repo)
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
    ensure_supported_python(argv)
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
