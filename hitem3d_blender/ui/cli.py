"""The command line: ``blender --command hitem3d import|submit|status ...``.

``main`` is the whole command: it parses, starts the same jobs as the panel
through ``engine.control``, waits for them by driving ``engine.timer.tick`` (a
command runs in the background, with no event loop) and returns the exit code. It writes
progress lines to ``out`` and problems to ``err``, so tests call it directly.

Exit codes: 0 success, 1 a task (or the connection) failed, 2 bad usage,
3 not enough credits for the estimate (nothing was sent), 4 a task exists on
Hitem3D but this version cannot follow it (its ID was printed; nothing failed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

import bpy

from . import preferences, submit_calls
from ..core import calls, mesh_upload, models, prices, send_queue, sending
from ..core import submission as core_submission
from ..core.api import TaskStatus
from ..core.errors import GenerationFailed, Hitem3DError, NotFollowable, OnlineAccessDisabled
from ..core.import_options import DEFAULT_COLLECTION, ImportOptions
from ..core.pipeline import DEFAULT_TIMEOUT_S
from ..core.settings import ApiSettings
from ..core.submission import InvalidSubmission, RequestType, Submission, validate
from ..core.task_ids import parse_task_ids
from ..core import kind_requests, task_kinds
from ..core.kind_requests import DEFAULT_RELIEF_HEIGHT, KindRequest
from ..core.task_kinds import kind_of
from ..core.tasks import TaskRecord, TaskState
from ..engine import batch, control, state

COMMAND = "hitem3d"
PROG = f"blender --command {COMMAND}"
EXIT_OK = 0
# NOTE: 1 is Blender's: it exits with 1 when no add-on registered the command
# (`Unrecognized command`) or the command raised, so a failed task has its own code.
EXIT_NOT_INSTALLED = 1
EXIT_FAILED = 5
EXIT_USAGE = 2
EXIT_CREDITS = 3
EXIT_UNFOLLOWED = 4
DEFAULT_STATUS_TIMEOUT_S = 120.0
# Sending one request is quick; this bounds a hung connection.
SUBMIT_TIMEOUT_S = 600.0

ONLINE_ACCESS_HELP = (
    "Online access is off: start Blender with --online-mode before --command "
    f"(blender --online-mode --command {COMMAND} ...), "
    "or enable Preferences > System > Network > Allow Online Access"
)

_DESCRIPTION = """\
Import Hitem3D results, send images to generate, split, colour or turn into
reliefs, and check tasks, without the user interface. Credentials come from the add-on preferences or from the
HITEM3D_CLIENT_ID and HITEM3D_CLIENT_SECRET environment variables.

exit codes: 0 success, 1 Blender's own (no hitem3d command: the extension is
not installed or not enabled; or a Python error), 2 bad usage, 3 not enough
credits for the estimated cost (nothing was sent), 4 a task was created on
Hitem3D but this version cannot follow it yet (kept; retry later), 5 a task,
the connection or the credentials failed
"""

_EPILOG = f"""\
examples:
  blender --online-mode --command {COMMAND} import 2c2ad20c...1NraEb5ohU --output chair.blend
  blender --online-mode --command {COMMAND} submit chair.png --model hitem3dv2.1 --wait --output chair.blend
  blender --online-mode --command {COMMAND} submit --texture-mesh chair.glb chair.png --wait --output chair.blend
  blender --online-mode --command {COMMAND} status 2c2ad20c...1NraEb5ohU
  blender --online-mode --command {COMMAND} split knight.glb --template c --joint ball --wait
  blender --online-mode --command {COMMAND} relief coin.png --height 0.05 --wait --output coin.blend

Run "{PROG} COMMAND --help" for the options of each command.
"""


class UsageError(Exception):
    """Bad input found after parsing (exit 2)."""


# -- parsing --------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be 0 to 1: {text}")
    return value


def _max_tasks(text: str) -> int:
    try:
        return send_queue.checked_limit(text, "--max-tasks")
    except send_queue.InvalidLimit as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _limit_option(parser: argparse.ArgumentParser) -> None:
    """--max-tasks, for the commands that send requests."""
    low, high = send_queue.MAX_RUNNING_RANGE
    parser.add_argument("--max-tasks", type=_max_tasks, metavar="N",
                        help=f"at most N tasks run on the account at once, {low} to {high}; the others wait and go "
                             f"as tasks end (default: the add-on preference 'Tasks at once (max)', else "
                             f"${send_queue.ENV_MAX_RUNNING}, else {send_queue.DEFAULT_MAX_RUNNING})")


def _placement(parser: argparse.ArgumentParser) -> None:
    """Import options, shared by import and submit --wait."""
    group = parser.add_argument_group("placement")
    group.add_argument("--output", "-o", metavar="FILE.blend",
                       help="save the scene to this .blend file after importing (folders are created)")
    group.add_argument("--collection", metavar="NAME", default=DEFAULT_COLLECTION,
                       help=f"collection for the new objects, created if missing (default {DEFAULT_COLLECTION!r}; "
                            "'' for the active collection)")
    group.add_argument("--at-origin", action="store_true", help="place models at the world origin, not the 3D cursor")
    group.add_argument("--keep-origin", action="store_true",
                       help="keep each object's origin (default: move it to the bottom centre)")
    group.add_argument("--size", type=_positive, metavar="METRES",
                       help="scale each model so its longest side has this length")
    group.add_argument("--smooth", action="store_true", help="shade meshes smooth")
    group.add_argument("--asset", action="store_true", help="mark each model as an asset")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    imports = commands.add_parser(
        "import", help="wait for tasks and import their models",
        description="Wait for each task to finish on Hitem3D, download its result and import it into the "
                    "scene according to its kind (parts in their own collection, a depth map as a relief, "
                    "multicolour with its colours). Tasks run side by side; one progress line is printed per change. Exit code 5 "
                    "when any task failed (the others are still imported and saved).",
        epilog=f"example:\n  blender --online-mode --command {COMMAND} import ID1 ID2 --collection Props "
               "--output props.blend",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    imports.add_argument("task_ids", nargs="+", metavar="TASK_ID",
                         help="Hitem3D task IDs (a pasted link with task_id=... works too)")
    imports.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                         help="give up waiting after this long (default %(default).0f)")
    _placement(imports)

    submit = commands.add_parser(
        "submit", help="send images to generate 3D models",
        description="Send each IMAGE as its own generation (or --front/--back/--left/--right as one "
                    "multi-view generation) and print the new task IDs, one per line. With --texture-mesh, "
                    "texture that GLB from the picture instead. With --wait, wait for them and import the "
                    "models. Generations spend Hitem3D credits: the estimated cost (from the price list of "
                    f"{prices.PRICES_DATE}) and the balance are printed to standard error first, and nothing "
                    "is sent when the balance is known to be too low (exit code 3). At most --max-tasks (else "
                    f"the add-on preference 'Tasks at once (max)', else ${send_queue.ENV_MAX_RUNNING}, else "
                    f"{send_queue.DEFAULT_MAX_RUNNING}) run on the account: the others wait, and go as tasks end.",
        epilog=f"example:\n  blender --online-mode --command {COMMAND} submit a.png b.png --model hitem3dv2.1 "
               "--resolution 1536pro --wait --output ab.blend",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    submit.add_argument("images", nargs="*", metavar="IMAGE", help="PNG, JPEG or WebP files, at most 20 MB each")
    for view in ("front", "back", "left", "right"):
        submit.add_argument(f"--{view}", metavar="IMAGE", help=f"the {view} view of one multi-view generation")
    submit.add_argument("--model", default=models.DEFAULT_MODEL, choices=[spec.id for spec in models.MODELS],
                        metavar="MODEL", help="model version: " + ", ".join(
                            spec.id if spec.confirmed else f"{spec.id} (unconfirmed: not on Hitem3D's pages)"
                            for spec in models.MODELS) + " (default %(default)s)")
    submit.add_argument("--resolution", metavar="R",
                        help="resolution allowed for the model (default: the model's own, e.g. "
                             f"{models.default().default_resolution} for {models.DEFAULT_MODEL})")
    submit.add_argument("--face", type=int, metavar="N", help="target face count (default: the model's)")
    submit.add_argument("--geometry-only", action="store_true", help="no texture (request type 1)")
    submit.add_argument("--no-pbr", action="store_true", help="no PBR material maps (models that offer them)")
    submit.add_argument("--texture-mesh", metavar="MESH.glb",
                        help="texture this GLB (at most 200 MB) from the one IMAGE or the views, instead of "
                             "generating a model (request type 2; " + ", ".join(
                                 spec.id for spec in models.texturing_models()) + ")")
    submit.add_argument("--remove-lighting", type=_fraction, metavar="STRENGTH",
                        help="remove the picture's lighting from the texture, 0 to 1 (models that offer it)")
    submit.add_argument("--wait", action="store_true", help="wait for the tasks and import their models")
    _limit_option(submit)
    submit.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help="with --wait: give up waiting after this long (default %(default).0f)")
    _placement(submit)

    _kind_parsers(commands)

    status = commands.add_parser(
        "status", help="show the state of tasks without importing",
        description="Ask Hitem3D for the state of each task (of any kind: image to 3D, " + ", ".join(
                        kind.id_prefix for kind in task_kinds.KINDS if kind.id_prefix) + ") and print one line per "
                    "task: the ID, the state (created, queueing, processing, success, failed) and the progress "
                    "when known. Exit code 5 when a task failed or could not be asked for; 4 when a task exists "
                    "but no query path this version knows answers for it (state unfollowed).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("task_ids", nargs="+", metavar="TASK_ID", help="Hitem3D task IDs")
    status.add_argument("--json", action="store_true", help="print one JSON list instead of lines")
    status.add_argument("--timeout", type=_positive, default=DEFAULT_STATUS_TIMEOUT_S, metavar="SECONDS",
                        help="give up waiting for answers after this long (default %(default).0f)")
    return parser


def _field_help(spec: task_kinds.FieldSpec) -> str:
    """A field's help, from the table: what it does, its values, its default."""
    what = spec.description or spec.label
    if spec.choices:
        values = ", ".join(f"{value} ({label})" if label.lower() != value else value for value, label in spec.choices)
        return f"{what}: {values} (default {spec.default})"
    return f"{what}: {spec.minimum:g} to {spec.maximum:g} (default {spec.default})"


def _field_type(spec: task_kinds.FieldSpec) -> Callable[[str], Any]:
    if spec.choices:
        return str
    return int if spec.integer else float


def _source_help(kind: task_kinds.TaskKind) -> str:
    files = ", ".join(extension.upper() for extension in kind.source_extensions if extension != "jpg")
    what = f"a {files} file of at most {task_kinds.megabytes(kind.max_source_bytes)}"
    return what if kind.takes_picture else f"{what}, or the ID of a finished task"


def _kind_parsers(commands: Any) -> None:
    """A command per kind of ``task_kinds.offered()``, its options from the
    kind's fields (``FieldSpec.option``, ``cli_flag``)."""
    for kind in task_kinds.offered():
        note = kind.unconfirmed()
        parser: argparse.ArgumentParser = commands.add_parser(
            kind.command, help=kind.tooltip,
            description=f"{kind.tooltip}. Prints the new task ID; with --wait, waits and imports the result. "
                        "Spends Hitem3D credits." + (f" {note}." if note is not None else ""),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(kind=kind.id)
        parser.add_argument("source", metavar="SOURCE", help=_source_help(kind))
        for spec in kind.fields:
            if spec.option:
                parser.add_argument(spec.option, dest=spec.name, type=_field_type(spec),
                                    choices=[value for value, _ in spec.choices] or None,
                                    metavar=None if spec.choices else "N", help=_field_help(spec))
            if spec.cli_flag is not None:
                flag, value = spec.cli_flag
                label = dict(spec.choices).get(value, value)
                parser.add_argument(flag, dest=spec.name, action="store_const", const=value,
                                    help=f"{spec.description or spec.label}: {label} (default "
                                         f"{dict(spec.choices).get(spec.default, spec.default)})")
        if kind.result_style is task_kinds.ResultStyle.RELIEF:
            parser.add_argument("--height", type=_positive, default=DEFAULT_RELIEF_HEIGHT, metavar="METRES",
                                help="how deep the relief is made in Blender, not sent to Hitem3D "
                                     "(default %(default)s)")
        parser.add_argument("--wait", action="store_true", help="wait for the task and import its result")
        _limit_option(parser)
        parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                            help="with --wait: give up waiting after this long (default %(default).0f)")
        _placement(parser)


def main(argv: list[str], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one command; returns the exit code (never raises SystemExit)."""
    parser = _parser()
    try:
        # NOTE: argparse prints help to sys.stdout and usage errors to
        # sys.stderr, then exits: point both at our streams and keep the code.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if not state.runs_to_end():
            raise UsageError(f"{COMMAND} commands run in the background: {PROG} ...")
        # A kind's command (``_kind_parsers``) says its kind; the others are in _COMMANDS.
        run: Callable[[argparse.Namespace, TextIO, TextIO], int] = (
            _run_kind if getattr(args, "kind", None) else _COMMANDS[args.command])
        return run(args, out, err)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=err, flush=True)
        return EXIT_USAGE


# -- shared steps ----------------------------------------------------------------------


def _settings(err: TextIO) -> ApiSettings | None:
    """Settings ready for the network, or None after saying why not."""
    try:
        return preferences.usable_settings()
    except OnlineAccessDisabled:
        print(ONLINE_ACCESS_HELP, file=err, flush=True)
    except Hitem3DError as exc:
        print(str(exc), file=err, flush=True)
    return None


def _task_ids(texts: list[str]) -> list[str]:
    try:
        return parse_task_ids(" ".join(texts))
    except Hitem3DError as exc:
        raise UsageError(str(exc)) from None


def _output_path(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser().absolute()
    if path.suffix.lower() != ".blend":
        raise UsageError(f"--output must name a .blend file, not {path.name!r}")
    return path


def _options(args: argparse.Namespace) -> ImportOptions:
    return ImportOptions(
        collection=args.collection,
        at_cursor=not args.at_origin,
        scale_to_size=args.size is not None,
        target_size=args.size if args.size is not None else 1.0,
        origin_bottom_center=not args.keep_origin,
        shade_smooth=args.smooth,
        mark_asset=args.asset,
    )


class _Progress:
    """Prints a line when a task's state changes (and at progress steps)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last: dict[str, tuple[TaskState, int]] = {}

    def __call__(self, records: list[TaskRecord]) -> None:
        for rec in records:
            step = self._step(rec)
            if self._last.get(rec.task_id) == (rec.state, step):
                continue
            self._last[rec.task_id] = (rec.state, step)
            if rec.state.is_terminal:
                continue  # the summary says how it ended
            percent = f" {step}%" if step >= 0 else ""
            print(f"{rec.task_id}: {rec.state.value}{percent}", file=self._out, flush=True)

    @staticmethod
    def _step(rec: TaskRecord) -> int:
        if rec.progress is None or rec.state not in (TaskState.PROCESSING, TaskState.DOWNLOADING):
            return -1
        percent = int(rec.progress * 100)
        # Server progress is coarse; download progress moves in quarters.
        return percent if rec.state is TaskState.PROCESSING else percent - percent % 25


def _wait_and_report(task_ids: list[str], timeout_s: float, output: Path | None,
                     out: TextIO, err: TextIO) -> int:
    """Wait for the tasks, print how each ended, save ``output``; the exit code."""
    records = batch.wait_for(task_ids, timeout_s + 30.0, on_tick=_Progress(out))
    failed = [rec for rec in records if rec.state is not TaskState.DONE]
    for rec in records:
        if rec.state is TaskState.DONE:
            print(f"{rec.task_id}: done, {len(rec.imported_objects)} object(s) imported", file=out, flush=True)
        else:
            print(f"{rec.task_id}: {rec.state.value}: {rec.message or 'not finished'}", file=err, flush=True)
    imported = sum(len(rec.imported_objects) for rec in records if rec.state is TaskState.DONE)
    print(f"Imported {imported} object(s) from {len(records) - len(failed)} of {len(records)} task(s)",
          file=out, flush=True)
    if output is not None and len(failed) < len(records):
        if not _save(output, out, err):
            return EXIT_FAILED
    return _ending([rec.state.value for rec in failed])


def _ending(states: list[str]) -> int:
    """The exit code for tasks that did not succeed, by their states: 4 when
    every one was only not followed (it exists on Hitem3D), else 1."""
    if not states:
        return EXIT_OK
    return EXIT_UNFOLLOWED if all(value == TaskState.UNFOLLOWED.value for value in states) else EXIT_FAILED


def _save(path: Path, out: TextIO, err: TextIO) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A copy: the session's own file name stays as it was.
        bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, check_existing=False)
    except (OSError, RuntimeError) as exc:
        print(f"Could not save {path}: {str(exc).strip() or type(exc).__name__}", file=err, flush=True)
        return False
    print(f"Saved {path}", file=out, flush=True)
    return True


# -- the commands ----------------------------------------------------------------------


def _run_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    task_ids = _task_ids(args.task_ids)
    output = _output_path(args.output)
    settings = _settings(err)
    if settings is None:
        return EXIT_FAILED
    options = _options(args)
    for task_id in task_ids:
        if not state.is_running(task_id):
            control.start_import(task_id, settings, timeout_s=args.timeout, options=options)
    return _wait_and_report(task_ids, args.timeout, output, out, err)


def _submissions(args: argparse.Namespace) -> list[Submission]:
    views = {view: getattr(args, view) for view in ("front", "back", "left", "right") if getattr(args, view)}
    if views and args.images:
        raise UsageError("give IMAGE files or --front/--back/--left/--right views, not both")
    if not views and not args.images:
        raise UsageError("give at least one IMAGE (or --front with other views)")
    spec = models.get(args.model)
    assert spec is not None  # argparse checked the choice
    common: dict[str, Any] = {
        "model": spec.id,
        "resolution": args.resolution or spec.default_resolution,
        "request_type": RequestType.GEOMETRY if args.geometry_only else RequestType.GEOMETRY_AND_TEXTURE,
        "face": args.face if args.face is not None else spec.face_default,
        "pbr": not args.no_pbr,
        "shading": args.remove_lighting,
    }
    if args.texture_mesh:
        if args.geometry_only:
            raise UsageError("--texture-mesh makes a texture: it cannot be --geometry-only")
        if len(args.images) > 1:
            raise UsageError("--texture-mesh takes one IMAGE (or views) as the reference picture")
    absolute = {view: str(Path(path).expanduser().absolute()) for view, path in views.items()}
    if args.texture_mesh:
        mesh = Path(args.texture_mesh).expanduser().absolute()
        wanted = [core_submission.texture_request(
            model=spec.id, resolution=common["resolution"], pbr=common["pbr"], shading=common["shading"],
            image="" if views else str(Path(args.images[0]).expanduser().absolute()), views=absolute,
            mesh=str(mesh), mesh_name=mesh.stem)]
    else:
        wanted = [Submission(views=absolute, **common)] if views else [
            Submission(image=str(Path(image).expanduser().absolute()), **common) for image in args.images]
    for submission in wanted:
        try:
            validate(submission)
        except InvalidSubmission as exc:
            raise UsageError(f"{exc} (nothing was sent)") from None
    return wanted


def _run_submit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _send_and_follow(args, _submissions, out, err)


def _kind_values(kind: task_kinds.TaskKind, args: argparse.Namespace) -> dict[str, str]:
    """The fields given on the command line. A field that applies only when
    another has a value (a general split's --level) sets that value, unless
    the other was given otherwise."""
    given = {spec.name: str(getattr(args, spec.name)) for spec in kind.fields
             if getattr(args, spec.name, None) is not None}
    values = dict(given)
    for spec in kind.fields:
        if spec.name in given and spec.when is not None:
            other, needed = spec.when
            if given.get(other, needed) != needed:
                raise UsageError(f"{spec.option or spec.name} applies only when {other} is {needed}")
            values[other] = needed
    return values


def _kind_request(args: argparse.Namespace) -> list[submit_calls.Request]:
    """The request of a kind's command (``split``, ``relief``, …)."""
    kind = task_kinds.get(args.kind)
    assert kind is not None
    values = _kind_values(kind, args)
    source = Path(args.source).expanduser()
    extra: dict[str, Any] = {}
    if kind.result_style is task_kinds.ResultStyle.RELIEF:
        extra["relief_height"] = args.height
    # A file by its extension (a task ID's last part is a random suffix); a picture always comes from a file.
    if kind.takes_picture or source.suffix.lower().lstrip(".") in kind.source_extensions:
        request = KindRequest(kind.id, values, source_path=str(source.absolute()), source_name=source.stem, **extra)
    else:
        [task_id] = _task_ids([args.source])
        request = KindRequest(kind.id, values, source_task_id=task_id, **extra)
    try:
        kind_requests.validate(request)
    except Hitem3DError as exc:
        raise UsageError(f"{exc} (nothing was sent)") from None
    return [request]


def _send_and_follow(args: argparse.Namespace, build: Callable[[argparse.Namespace], list[Any]],
                     out: TextIO, err: TextIO) -> int:
    """Send what ``build`` makes of ``args``, print the new task IDs, and with
    ``--wait`` import the results."""
    output = _output_path(args.output)
    if output is not None and not args.wait:
        raise UsageError("--output needs --wait (there is nothing to save before the models are imported)")
    wanted = build(args)
    limit = args.max_tasks
    if limit is None:
        try:
            limit = send_queue.limit_from(preferences.get().max_running_tasks)
        except send_queue.InvalidLimit as exc:
            raise UsageError(f"{exc} (nothing was sent)") from None
    settings = _settings(err)
    if settings is None:
        return EXIT_FAILED
    submit_calls.set_max_running(limit)
    try:
        return _send(args, wanted, settings, output, out, err)
    finally:
        submit_calls.set_max_running(None)


def _send(args: argparse.Namespace, wanted: list[Any], settings: ApiSettings, output: Path | None,
          out: TextIO, err: TextIO) -> int:
    if not _affordable(wanted, settings, err):
        return EXIT_CREDITS
    if not _say_uploads(wanted, settings, err):
        return EXIT_FAILED
    options = _options(args)
    # Every request waits in the send queue: at most ``limit`` tasks run on the
    # account (10 by default), the rest go as tasks end.
    # NOTE: without --wait a new task is not followed (no import job, nothing
    # in the task list the next interactive session would resume): the queue
    # only asks now and then whether it has ended.
    keys = [submit_calls.start_submission(request, settings, options, timeout_s=args.timeout, button=COMMAND,
                                          panel="", estimate=prices.for_request(request), follow=args.wait)
            for request in wanted]
    task_ids: list[str] = []
    failures = 0
    for request, key in zip(wanted, keys):
        outcome = submit_calls.wait_for_submission(
            key, SUBMIT_TIMEOUT_S, on_waiting=lambda line: print(line, file=err, flush=True))
        if outcome.task_id:
            task_ids.append(outcome.task_id)
            print(outcome.task_id, file=out, flush=True)
        else:
            failures += 1
            print(f"{request.describe()}: {outcome.error}", file=err, flush=True)
    if not args.wait:
        return EXIT_FAILED if failures else EXIT_OK
    if not task_ids:
        return EXIT_FAILED
    code = _wait_and_report(task_ids, args.timeout, output, out, err)
    return EXIT_FAILED if failures else code


def _say_uploads(wanted: list[submit_calls.Request], settings: ApiSettings, err: TextIO) -> bool:
    """Before anything leaves: what leaves this computer and where it goes,
    and each mesh of the artist's own that is uploaded. False (after saying
    why) when the storage's address cannot be used."""
    print(submit_calls.what_leaves(settings), file=err, flush=True)
    for request in wanted:
        if not sending.uploads_mesh(request):
            continue
        assert isinstance(request, Submission)
        try:
            target = mesh_upload.target_from_env(api_base_url=settings.base_url)
            size = Path(request.mesh).stat().st_size
        except Hitem3DError as exc:
            print(f"{exc} (nothing was sent)", file=err, flush=True)
            return False
        except OSError as exc:
            print(f"{request.mesh}: {exc.strerror or exc} (nothing was sent)", file=err, flush=True)
            return False
        print(mesh_upload.uploading(Path(request.mesh).name, size, target), file=err, flush=True)
    return True


def _affordable(wanted: list[submit_calls.Request], settings: ApiSettings, err: TextIO) -> bool:
    """Print the estimated cost and the balance; False (after saying how many
    credits are missing) when the balance is known to be below the estimate."""
    estimate = prices.total([prices.for_request(request) for request in wanted])
    # The send queue's own balance check: the requests then go without asking again.
    submit_calls.refresh_balance(settings)
    batch.wait_for_call(DEFAULT_STATUS_TIMEOUT_S)
    status = submit_calls.balance_status()
    balance = status.credits if status is not None and not status.error else None
    print(f"{prices.cost_line(estimate, balance)} (an estimate from the price list of {prices.PRICES_DATE})",
          file=err, flush=True)
    if balance is None:
        reason = status.error if status is not None and status.error else "no answer"
        print(f"Balance unknown ({reason}): Hitem3D decides", file=err, flush=True)
    try:
        prices.check_balance(estimate, balance)
    except prices.NotEnoughCredits as exc:
        print(f"{exc} (nothing was sent)", file=err, flush=True)
        return False
    return True


def _query(task_id: str) -> calls.Call:
    # The value: a TaskStatus, or the GenerationFailed or NotFollowable that
    # is the task's state (not a failure to ask).
    return calls.query_task(task_id)


def _run_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    task_ids = _task_ids(args.task_ids)
    settings = _settings(err)
    if settings is None:
        return EXIT_FAILED
    results = batch.run_calls(settings, {f"status-{task_id}": _query(task_id) for task_id in task_ids},
                               args.timeout)
    rows: list[dict[str, Any]] = []
    for task_id in task_ids:
        result = results[f"status-{task_id}"]
        row: dict[str, Any] = {"task_id": task_id, "kind": kind_of(task_id).id, "state": "", "progress": None,
                               "error": ""}
        if not result.ok:
            row["error"] = result.error
        elif isinstance(result.value, GenerationFailed):
            row.update(state="failed", error=str(result.value))
        elif isinstance(result.value, NotFollowable):
            row.update(state=TaskState.UNFOLLOWED.value, error=str(result.value))
        else:
            status: TaskStatus = result.value
            row.update(state=status.state, progress=status.progress)
        rows.append(row)
    code = _ending([row["state"] or "error" for row in rows if row["error"]])
    if args.json:
        print(json.dumps(rows, indent=2), file=out, flush=True)
    for row in rows:
        if not args.json and row["state"]:
            progress = f" {row['progress']:.0f}%" if row["progress"] is not None else ""
            print(f"{row['task_id']}: {row['state']}{progress}", file=out, flush=True)
        if row["error"]:
            print(f"{row['task_id']}: {row['error']}", file=err, flush=True)
    return code


def _run_kind(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kind = task_kinds.get(args.kind)
    note = kind.unconfirmed() if kind is not None else None
    if note is not None:
        print(note, file=err, flush=True)  # said before anything is spent, as beside the sidebar's button
    return _send_and_follow(args, _kind_request, out, err)


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "import": _run_import,
    "submit": _run_submit,
    "status": _run_status,
}


def run_registered(argv: list[str]) -> int:
    """The callback ``bpy.utils.register_cli_command`` calls."""
    return main(list(argv))
