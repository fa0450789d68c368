"""The Chinese (zh_HANS) interface: every string the add-on shows has a translation.

The bpy builds we test with ship no locale data, so Blender cannot be switched
to Chinese here. Two checks stand in for looking at the screen:

- In real Blender, every class the add-on registers is walked the way
  Blender's own message extractor (``bl_i18n_utils``) walks it: labels, tooltips,
  property names, enum items (the dynamic ones for every model). Each string
  must have an entry, in the context Blender looks it up in.
- Every message the code can show is collected from the source with ``ast``
  (errors, reports, notices, labels, the message tables) and translated with
  the catalogue by the same translator ``translations.message`` uses. An
  f-string becomes a sample ("Task X1: X2"); its translation must differ, hold
  Chinese, and leave no English phrase behind. The same walk checks that text
  reaches the screen through ``translations.message`` wherever Blender would
  not translate it (reports, wrapped lines, built strings).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hitem3d_blender import translations
from hitem3d_blender.core import errors, models
from hitem3d_blender.core.api import TaskStatus
from hitem3d_blender.core.errors import BadResultFile
from hitem3d_blender.core.pipeline import ImportJob, _download
from hitem3d_blender.core.submission import VIEWS, InvalidSubmission, RequestType, Submission, validate

PACKAGE = Path(__file__).resolve().parents[1] / "hitem3d_blender"
DEFAULT, OPERATOR = translations.DEFAULT, translations.OPERATOR
CATALOGUE = translations.catalogue()
DEFAULT_ENTRIES = {english: chinese for (context, english), chinese in CATALOGUE.items() if context == DEFAULT}
translate = translations.translator(lambda msgid: DEFAULT_ENTRIES.get(msgid, msgid))

CJK = re.compile(r"[\u4e00-\u9fff]")
# Left in English on purpose: product and model names, formats, protocols,
# the platform's own field names, units, and the API's view identifiers.
KEPT_ENGLISH = re.compile(
    r"Hitem3D v\d\.\d|Hi3D v\d\.\d|Portrait v\d\.\d|Hitem3D|Client ID|Client Secret|glTF|Blender"
    r"|https?://\S+|http\(s\)|front、back、left 和 right|\b(?:GLB|PNG|JPEG|WebP|PBR|HTTPS?|TLS|DNS|CA|PEM|Base64"
    r"|SOCKS|URL|API|ID|ASCII|MB|GB)\b"
)
ENGLISH_PHRASE = re.compile(r"[A-Za-z]{2,}(?:[ ,'-]+[A-Za-z]{2,}){1,}")


def assert_translated(english: str, chinese: str) -> None:
    """Changed, in Chinese, with no English words left but the kept ones."""
    assert chinese != english, f"no translation for {english!r}"
    assert CJK.search(chinese), f"{english!r} -> {chinese!r} holds no Chinese"
    rest = KEPT_ENGLISH.sub(" ", re.sub(r"X\d+", " ", chinese))
    left = ENGLISH_PHRASE.search(rest)
    assert left is None, f"{english!r} -> {chinese!r} leaves English: {left.group(0)!r}"


# -- the translator ------------------------------------------------------------------------------


def test_a_message_with_an_entry_of_its_own_is_looked_up_as_it_is() -> None:
    assert translate("Task ID copied") == "任务 ID 已复制"


def test_a_template_fills_the_values_back_in() -> None:
    assert translate("Cannot reach api.example.com: check your internet connection, then retry") == \
        "无法连接 api.example.com：请检查网络连接，然后重试"


def test_values_that_are_messages_are_translated_too() -> None:
    text = "Task 2c2ad20c: Retrying (2 of 6): Hitem3D is unavailable (HTTP 503): retry in a few minutes"
    assert translate(text) == "任务 2c2ad20c：正在重试（第 2 次，共 6 次）：Hitem3D 暂时不可用（HTTP 503）：请几分钟后重试"


def test_a_message_is_claimed_by_the_template_that_starts_with_its_words() -> None:
    # "{host} did not answer in time: ..." would match too, with "Task 2c2ad20c: api.x" as the host.
    text = "Task 2c2ad20c: api.x did not answer in time: check your connection, or raise the timeout in Network settings"
    assert translate(text).startswith("任务 2c2ad20c：api.x 未及时应答")


def test_unknown_text_comes_back_unchanged() -> None:
    assert translate("Hitem3D answered: Bild zu groß (code 99)") == "Hitem3D 返回：Bild zu groß（代码 99）"
    assert translate("Something Hitem3D never says") == "Something Hitem3D never says"
    assert translate("") == ""


def test_placeholder_values_are_kept_exactly() -> None:
    text = "CA bundle file not found: C:\\Users\\me\\{odd} root.pem"
    assert translate(text) == "找不到 CA 证书包文件：C:\\Users\\me\\{odd} root.pem"


def test_an_english_interface_gets_every_message_back_unchanged() -> None:
    english = translations.translator(lambda msgid: msgid)
    for found in collected_messages():
        assert english(found.text) == found.text


def test_every_translation_keeps_the_placeholders_of_its_template() -> None:
    for english, chinese in {**translations.MESSAGES, **translations.FORMATS}.items():
        assert sorted(translations.placeholders(chinese)) == sorted(translations.placeholders(english)), english


def test_a_template_needs_literal_text_and_distinct_placeholders() -> None:
    for bad in ("{a}{b}", "{a}: {a}"):
        with pytest.raises(ValueError):
            translations.compile_template(bad)


def test_every_entry_is_chinese_but_the_names_that_stay_as_they_are() -> None:
    kept = {"Hitem3D", "Client ID", "Client Secret"} | {spec.label for spec in models.MODELS}
    for (_, english), chinese in CATALOGUE.items():
        if english in kept:
            assert chinese == english
        else:
            assert CJK.search(chinese), english


# -- every message in the source ----------------------------------------------------------------
# NOTE: left out on purpose, and why:
# - cli.py: the command line prints English for pipelines that parse it;
# - log calls (``log.info`` ...), the journal and diagnostics.report: written
#   for the log file and for support, in English;
# - exceptions that are not ``Hitem3DError`` (RuntimeError, ValueError,
#   AssertionError, IllegalTransition): programming errors, never shown as a message.

EXCLUDED_FILES = {"cli.py", "diagnostics.py", "translations.py"}
# Calls that hand a finished message on to be shown later: name -> (position, keyword).
MESSAGE_ARGUMENTS: dict[str, tuple[int | None, str | None]] = {
    "post_report": (0, "message"),
    "set_notice": (0, "text"),
    "set_generate_notice": (0, "text"),
    "set_balance_error": (0, "text"),
    "set_connection_status": (1, "text"),
    "ConnectionStatus": (1, "text"),
    "TaskUpdate": (None, "message"),
    "CallResult": (None, "error"),
    "SubmissionOutcome": (None, "error"),
    "Loaded": (None, "warning"),
    "report": (1, "message"),  # Operator.report(type, message)
    "_wrapped": (1, "text"),
    "message": (0, "text"),
}
# UILayout calls: Blender translates a literal ``text`` itself (an exact lookup).
LAYOUT_TEXT = {"label": DEFAULT, "prop": DEFAULT, "progress": DEFAULT, "operator": OPERATOR, "_task_button": OPERATOR}
TABLES = {"CODE_MESSAGES", "MESSAGES", "_LABELS", "VIEW_LABELS"}
# Functions whose return value is text for the screen.
DISPLAY_FUNCTIONS = {"balance_text", "progress_text", "message_for_code", "_problem"}
TRANSLATING_CALLS = {"message", "iface"}


@dataclass(frozen=True)
class Found:
    text: str  # literal text, each formatted value as X1, X2, ...
    where: str


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _is_translated(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) in TRANSLATING_CALLS


class _Sampler:
    """Sample strings for an expression: its literal text with each dynamic
    part as ``X<n>``. A local variable stands for what was assigned to it."""

    def __init__(self, local: Mapping[str, list[ast.expr]]) -> None:
        self.local = local
        self.count = 0
        self.resolving: set[str] = set()

    def placeholder(self) -> str:
        self.count += 1
        return f"X{self.count}"

    def of(self, node: ast.expr) -> list[str]:
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else []
        if isinstance(node, ast.JoinedStr):
            texts = [""]
            for part in node.values:
                piece = part.value if isinstance(part, ast.Constant) else self.placeholder()
                texts = [text + str(piece) for text in texts]
            return texts
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.of(node.left) or [self.placeholder()]
            right = self.of(node.right) or [self.placeholder()]
            return [a + b for a in left for b in right]
        if isinstance(node, ast.IfExp):
            return self.of(node.body) + self.of(node.orelse)
        if isinstance(node, ast.BoolOp):
            return [text for value in node.values for text in self.of(value)]
        if isinstance(node, ast.Call) and _is_translated(node) and node.args:
            return self.of(node.args[0])
        if isinstance(node, ast.Name) and node.id in self.local and node.id not in self.resolving:
            self.resolving.add(node.id)
            try:
                return [text for value in self.local[node.id] for text in self.of(value)]
            finally:
                self.resolving.discard(node.id)
        return []  # data (an ID, a path) or a message made elsewhere, collected there


def _is_text(sample: str) -> bool:
    """Words to read, not only values ("X1 / X2")."""
    return re.search(r"[A-Za-z]{2,}", re.sub(r"X\d+", "", sample)) is not None


def _argument(call: ast.Call, position: int | None, keyword: str | None) -> ast.expr | None:
    if position is not None and len(call.args) > position:
        return call.args[position]
    return next((kw.value for kw in call.keywords if kw.arg == keyword), None)


def _error_classes(trees: Mapping[Path, ast.Module]) -> set[str]:
    """``Hitem3DError`` and every class that derives from it, by name."""
    bases = {node.name: {_name(base) for base in node.bases}
             for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = {"Hitem3DError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


@dataclass
class SourceWalk:
    messages: list[Found] = field(default_factory=list)  # finished English messages that reach the screen
    exact: list[tuple[str, str, str]] = field(default_factory=list)  # (context, msgid, where): looked up as is
    untranslated: list[str] = field(default_factory=list)  # where text reaches the screen untranslated


class _Walker:
    """Collects what one scope (a module's top level, or a function) shows."""

    def __init__(self, walk: SourceWalk, error_names: set[str], error_inits: set[int], file: str) -> None:
        self.walk = walk
        self.error_names = error_names
        self.error_inits = error_inits  # super().__init__(...) calls inside error classes
        self.file = file
        self.sampler = _Sampler({})

    def add(self, node: ast.expr, where: str) -> None:
        for sample in self.sampler.of(node):
            # A table's "{host}" is a value too; numbered in order, the same text makes the same sample.
            numbers = iter(range(1, 1000))
            text = re.sub(r"X\d+|\{\w+\}", lambda _: f"X{next(numbers)}", sample)
            found = Found(text, where)
            if _is_text(text) and found not in self.walk.messages:
                self.walk.messages.append(found)

    def scope(self, scope: ast.AST) -> None:
        if isinstance(scope, ast.Module):
            nodes: Iterable[ast.AST] = scope.body
        else:
            local: dict[str, list[ast.expr]] = {}
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    local.setdefault(node.targets[0].id, []).append(node.value)
            self.sampler = _Sampler(local)
            nodes = ast.walk(scope)
        for node in nodes:
            where = f"{self.file}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                self.call(node, where)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(target, ast.Name) and target.id in TABLES for target in targets):
                    for value in node.value.values:
                        self.add(value, where)
            elif isinstance(node, ast.FunctionDef) and node.name in DISPLAY_FUNCTIONS:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        self.add(inner.value, f"{self.file}:{inner.lineno}")

    def call(self, node: ast.Call, where: str) -> None:
        name = _name(node.func)
        if name in self.error_names or id(node) in self.error_inits:
            argument = _argument(node, 0, "message")
            if argument is not None:
                self.add(argument, where)
        if name in MESSAGE_ARGUMENTS and not (name == "report" and len(node.args) < 2):
            argument = _argument(node, *MESSAGE_ARGUMENTS[name])
            if argument is not None:
                self.add(argument, where)
                if name in {"report", "_wrapped"} and not _is_translated(argument):
                    self.walk.untranslated.append(f"{where}: {name}() shows it untranslated")
        if name == "iface" and node.args and isinstance(node.args[0], ast.Constant):
            # A msgid looked up as it is (a format string): it needs an exact entry.
            context = _argument(node, 1, "context")
            self.walk.exact.append((context.value if isinstance(context, ast.Constant) else DEFAULT,
                                    node.args[0].value, where))
        if name in LAYOUT_TEXT:
            text = _argument(node, None, "text")
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                if text.value:
                    self.walk.exact.append((LAYOUT_TEXT[name], text.value, where))
            elif text is not None:
                if not _is_translated(text) and any(_is_text(sample) for sample in self.sampler.of(text)):
                    self.walk.untranslated.append(f"{where}: {name}(text=...) is built: Blender cannot translate it")
                self.add(text, where)


@functools.cache
def source_walk() -> SourceWalk:
    """Every message the add-on's source can show, and where it is shown."""
    trees = {path: ast.parse(path.read_text("utf-8")) for path in sorted(PACKAGE.rglob("*.py"))
             if path.name not in EXCLUDED_FILES}
    error_names = _error_classes(trees)
    walk = SourceWalk()
    for path, tree in trees.items():
        error_inits = {id(call) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name in error_names
                       for call in ast.walk(node) if isinstance(call, ast.Call) and _name(call.func) == "__init__"}
        walker = _Walker(walk, error_names, error_inits, path.name)
        for scope in [tree, *(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))]:
            walker.scope(scope)
    return walk


def collected_messages() -> list[Found]:
    return source_walk().messages


def test_the_source_walk_finds_the_messages_it_is_meant_to() -> None:
    texts = {found.text for found in collected_messages()}
    # One of each kind: an error's own text, a core error, a report, a notice,
    # a label built in the panel, a table entry, a state label.
    for expected in ("No Hitem3D credentials: set Client ID and Client Secret in the add-on preferences",
                     "Hitem3D is unavailable (HTTP X1): retry in a few minutes",
                     "Task ID copied", "Connecting…", "Imported X1 object(s)",
                     "Hitem3D server error: retry in a few minutes", "Ready to import", "X1 (required)"):
        assert any(re.fullmatch(re.sub(r"X\d+", "X\\\\d+", re.escape(expected)), text) for text in texts), expected
    assert len(texts) > 100


@pytest.mark.parametrize("found", collected_messages(), ids=lambda found: f"{found.where} {found.text[:40]}")
def test_every_message_the_code_shows_has_a_translation(found: Found) -> None:
    assert_translated(found.text, translate(found.text))


def test_every_literal_label_has_an_entry_in_the_context_blender_looks_in() -> None:
    missing = [f"{where}: ({context!r}, {text!r})" for context, text, where in source_walk().exact
               if (context, text) not in CATALOGUE]
    assert not missing


def test_text_blender_cannot_translate_goes_through_translations_message() -> None:
    assert not source_walk().untranslated


# -- messages built from tables: checked with the real functions --------------------------------


def test_every_submission_description_is_translated() -> None:
    for model in models.MODELS:
        for request_type in (RequestType.GEOMETRY_AND_TEXTURE, RequestType.TEXTURE_MESH):
            single = Submission(model.id, model.default_resolution, request_type, image="/tmp/photo.png")
            assert_translated(single.describe(), translate(single.describe()))
            for count in range(1, len(VIEWS) + 1):
                views = Submission(model.id, model.default_resolution, request_type,
                                   views={view: f"/tmp/{view}.png" for view in VIEWS[:count]})
                assert_translated(views.describe(), translate(views.describe()))


def test_every_image_label_is_translated() -> None:
    views = Submission("hi3dv3.0", "2048quality", views={view: f"/tmp/{view}.png" for view in VIEWS})
    for label, _ in [*views.inputs(), *Submission("hi3dv3.0", "2048quality", image="/x.png").inputs()]:
        assert_translated(label, translate(label))
        assert_translated(f"{label}: a.png is empty", translate(f"{label}: a.png is empty"))


def _validation_message(submission: Submission) -> str:
    with pytest.raises(InvalidSubmission) as info:
        validate(submission)
    return str(info.value)


def test_every_list_of_choices_is_translated_without_an_english_or(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for spec in models.MODELS:
        for text in (_validation_message(Submission(spec.id, "999", image=str(image))),
                     _validation_message(Submission(spec.id, spec.default_resolution, RequestType.TEXTURE_MESH,
                                                    image=str(image))) if not spec.can_texture_mesh else ""):
            if text:
                chinese = translate(text)
                assert_translated(text, chinese)
                assert " or " not in chinese, chinese


def test_server_answers_without_words_are_translated() -> None:
    text = errors.message_for_code("12345", "  ")
    assert translate(text) == "Hitem3D 返回：无消息（代码 12345）"


def test_a_result_of_unknown_format_is_translated(tmp_path: Path) -> None:
    status = TaskStatus("t", "success", model_url="https://files.example.com/result")
    with pytest.raises(BadResultFile) as info:
        _download(ImportJob("t", tmp_path / "r.glb"), status, None, None, None)  # type: ignore[arg-type]
    assert_translated(str(info.value), translate(str(info.value)))


# -- in real Blender --------------------------------------------------------------------------------


def _operator_rna(cls: type) -> Any:
    module, name = cls.bl_idname.split(".")  # type: ignore[attr-defined]
    import bpy

    return getattr(getattr(bpy.ops, module), name).get_rna_type()


def _registered_classes(addon: ModuleType) -> list[type]:
    return [cls for module in addon._modules() for cls in module.classes]


def _property_strings(rna: Any, skip: set[str]) -> Iterator[tuple[str, str, str]]:
    """(context, text, where) of each property's name, tooltip and enum items,
    as Blender's extractor takes them: a name equal to its identifier is an
    internal property (never shown), and so is an enum item named as its identifier."""
    for prop in rna.properties:
        if prop.identifier in skip or prop.identifier == "rna_type":
            continue
        where = f"{rna.identifier}.{prop.identifier}"
        context = prop.translation_context or DEFAULT
        if prop.name and prop.name != prop.identifier:
            yield context, prop.name, where
        if prop.description:
            yield DEFAULT, prop.description, where
        if prop.type == "ENUM":
            for item in prop.enum_items:
                if item.name and item.name != item.identifier:
                    yield context, item.name, f"{where}:{item.identifier}"
                if item.description:
                    yield DEFAULT, item.description, f"{where}:{item.identifier}"


def _class_strings(cls: type) -> Iterator[tuple[str, str, str]]:
    import bpy

    if issubclass(cls, bpy.types.Operator):
        rna = _operator_rna(cls)
        yield rna.translation_context or OPERATOR, rna.name, cls.__name__
        for description in {rna.description, (cls.__doc__ or "").strip()} - {""}:
            yield DEFAULT, description, cls.__name__
        yield from _property_strings(rna, set())
        return
    rna = cls.bl_rna  # type: ignore[attr-defined]
    label = getattr(cls, "bl_label", "")
    if label:
        yield rna.translation_context or DEFAULT, label, cls.__name__
    if getattr(cls, "bl_category", ""):
        yield DEFAULT, getattr(cls, "bl_category"), cls.__name__
    if rna.description:
        yield DEFAULT, rna.description, cls.__name__
    inherited = {prop.identifier for prop in rna.base.properties} if rna.base else set()
    yield from _property_strings(rna, inherited)


def _dynamic_enum_strings(cls: type) -> Iterator[tuple[str, str, str]]:
    """The items of each dynamic enum of a property group, as its callback
    makes them for every value of the group's other enums (every model)."""
    import bpy

    holders = [(owner, prop.identifier) for owner in (bpy.context.scene, bpy.context.window_manager)
               for prop in owner.bl_rna.properties
               if prop.type == "POINTER" and prop.fixed_type.identifier == cls.__name__]
    for owner, attribute in holders:
        group = getattr(owner, attribute)
        static = [prop for prop in group.bl_rna.properties if prop.type == "ENUM" and len(prop.enum_items)]
        for name, annotation in getattr(cls, "__annotations__", {}).items():
            if isinstance(annotation, str):
                # NOTE: ``from __future__ import annotations`` leaves the property
                # as source text; Blender evaluates it in its module, and so do we.
                annotation = eval(annotation, vars(sys.modules[cls.__module__]))  # noqa: S307
            items = getattr(annotation, "keywords", {}).get("items")
            if not callable(items):
                continue
            try:
                for prop in static:
                    for choice in prop.enum_items:
                        setattr(group, prop.identifier, choice.identifier)
                        for identifier, label, description in items(group, bpy.context):
                            where = f"{cls.__name__}.{name}:{identifier} ({prop.identifier}={choice.identifier})"
                            if label != identifier:
                                yield DEFAULT, label, where
                            if description:
                                yield DEFAULT, description, where
            finally:
                for prop in static:
                    group.property_unset(prop.identifier)


def test_every_registered_class_is_walked(addon: ModuleType) -> None:
    import bpy

    walked = {cls.__name__ for cls in _registered_classes(addon)}
    registered = {name for name in dir(bpy.types) if name.startswith("HITEM3D_")}
    assert registered <= walked
    assert {"HITEM3D_Preferences", "HITEM3D_GenerateSettings", "HITEM3D_OT_import_task", "HITEM3D_PT_main"} <= walked


def test_every_label_tooltip_and_enum_item_has_a_translation(addon: ModuleType) -> None:
    table = addon.translations.translations_dict()[translations.LOCALE]
    strings = [found for cls in _registered_classes(addon) for found in _class_strings(cls)]
    assert len(strings) > 100
    missing = [f"{where}: ({context!r}, {text!r})" for context, text, where in strings if (context, text) not in table]
    assert not missing


def test_every_dynamic_enum_item_has_a_translation_for_every_model(addon: ModuleType) -> None:
    table = addon.translations.translations_dict()[translations.LOCALE]
    strings = [found for cls in _registered_classes(addon) for found in _dynamic_enum_strings(cls)]
    resolutions = sum(len(spec.resolutions) for spec in models.MODELS)
    assert len(strings) >= resolutions  # every model's resolutions were seen
    missing = [f"{where}: ({context!r}, {text!r})" for context, text, where in strings if (context, text) not in table]
    assert not missing


def test_the_catalogue_is_registered_with_the_addon_and_leaves_with_it(addon: ModuleType) -> None:
    import addon_utils
    import bpy

    from tests.conftest import ADDON_MODULE, enable_addon

    assert callable(bpy.app.translations.pgettext_iface)
    assert addon.translations.is_registered()
    addon_utils.disable(ADDON_MODULE, default_set=True)
    try:
        assert not addon.translations.is_registered()
        # Gone from Blender too: the name is free again.
        bpy.app.translations.register(ADDON_MODULE, {translations.LOCALE: {(DEFAULT, "Hitem3D"): "Hitem3D"}})
        bpy.app.translations.unregister(ADDON_MODULE)
    finally:
        addon = enable_addon()
    assert addon.translations.is_registered()


def test_an_interface_not_in_chinese_shows_every_message_as_it_is(addon: ModuleType) -> None:
    import bpy

    assert bpy.app.translations.locale in ("", "en_US", "DEFAULT") or not bpy.app.build_options.international
    for text in ("Task 2c2ad20c: Cancelled", "Connecting…", "Something else", ""):
        assert addon.translations.message(text) == text
    assert addon.translations.iface("Import", OPERATOR) == "Import"
    assert addon.panels.format_elapsed(65) == "1m 05s"
    assert addon.panels.format_elapsed(3 * 3600 + 120) == "3h 02m"


def test_with_the_interface_in_chinese_panels_and_reports_show_chinese(addon: ModuleType,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Blender in Chinese, stood in for by a lookup in the registered catalogue:
    what the panels draw and what operators report comes out in Chinese."""
    import bpy

    from tests.blender_helpers import TASK_ID
    from tests.test_blender_generate import FakeLayout

    table = addon.translations.translations_dict()[translations.LOCALE]
    monkeypatch.setattr(addon.translations, "iface",
                        lambda msgid, context=DEFAULT: table.get((context, msgid), msgid))
    addon.translations._translator.cache_clear()
    try:
        with pytest.raises(RuntimeError) as info:
            bpy.ops.hitem3d.import_task(task_id="not-an-id!")
        assert "不是任务 ID：not-an-id!（不允许使用“!”" in str(info.value)

        error = addon.core.errors.ServerError("Hitem3D server error: retry in a few minutes (code 10000000)")
        rec = addon.engine.control.fail_without_start(TASK_ID, error)
        rec.model = "hitem3dv2.1"
        drawn: list[tuple[str, str]] = []
        addon.panels.draw_details(FakeLayout(drawn), rec, 1000)
        shown = " ".join(text for kind, text in drawn if kind == "label")
        assert "Hitem3D 服务器错误：请几分钟后重试（代码 10000000）" in shown
        # (The state label, "Failed", is a catalogue entry Blender translates as it draws it.)
        assert "模型：hitem3dv2.1" in shown and "结束于 " in shown and "0秒" in shown

        drawn = []
        bpy.types.HITEM3D_PT_main.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
        assert "不是任务 ID：not-an-id!" in " ".join(text for kind, text in drawn if kind == "label")

        drawn = []
        bpy.types.HITEM3D_PT_generate.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
        assert ("label", "余额：尚未查询") in drawn
        assert addon.panels.format_elapsed(65) == "1分05秒"
    finally:
        addon.translations._translator.cache_clear()
