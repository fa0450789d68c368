"""The Chinese (zh_HANS) interface: every string the add-on shows has a translation.

Messages carry their template (the msgid) and values and are translated where
they are shown (``translations.text``), so the checks are plain lookups:

- Every template in the source is written as ``msg("...")``, ``msg_own("...")``
  or marked ``N_("...")`` in a table, with a literal: each has an entry in the
  context it is looked up in, with the same placeholders. The literal ``text=``
  of layout calls, which Blender translates itself, has one too.
- Text that reaches the screen some other way is caught where it is shown: a
  report must go through ``translations.text``, a built ``text=`` must say
  ``translate=False``.
- In real Blender, every registered class is walked the way Blender's message
  extractor walks it: labels, tooltips, property names and enum items.

The bpy builds we test with ship no locale data, so Blender cannot be switched
to Chinese here; a lookup in the registered catalogue stands in for it.
"""

from __future__ import annotations

import ast
import gettext
import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hitem3d_blender.i18n import translations
from hitem3d_blender.core import errors, messages, models
from hitem3d_blender.core.api import TaskStatus
from hitem3d_blender.core.errors import BadResultFile, Hitem3DError, clean_message
from hitem3d_blender.core.logs import RedactingFilter, register_secret
from hitem3d_blender.core.messages import Message, msg
from hitem3d_blender.core.display import duration
from hitem3d_blender.core.pipeline import ImportJob, _download
from hitem3d_blender.core.submission import VIEWS, InvalidSubmission, RequestType, Submission, validate
from hitem3d_blender.core.tasks import TaskState

PACKAGE = Path(__file__).resolve().parents[2] / "hitem3d_blender"
DEFAULT, OPERATOR, OWN = translations.DEFAULT, translations.OPERATOR, translations.OWN
CATALOGUE = translations.catalogue()


def chinese(message: Message) -> str:
    """``message`` as a Chinese interface shows it."""
    return message.render(lambda msgid, context: CATALOGUE.get((context, msgid), msgid))


CJK = re.compile(r"[\u4e00-\u9fff]")
# Left in English on purpose: product and model names, formats, protocols,
# the platform's own field names, units, and the API's view identifiers.
KEPT_ENGLISH = re.compile(
    r"Hitem3D v\d\.\d|Hi3D v\d\.\d|Portrait v\d\.\d|Hitem3D|Client ID|Client Secret|glTF|Blender"
    r"|https?://\S+|http\(s\)|front、back、left 和 right|\b(?:GLB|PNG|JPEG|WebP|PBR|HTTPS?|TLS|DNS|CA|PEM|Base64"
    r"|SOCKS|URL|API|ID|ASCII|MB|GB)\b"
)
ENGLISH_PHRASE = re.compile(r"[A-Za-z]{2,}(?:[ ,'-]+[A-Za-z]{2,}){1,}")


def assert_translated(message: Message, values: str = "") -> None:
    """Changed, in Chinese, with no English words left but the kept ones and ``values``."""
    english, text = str(message), chinese(message)
    assert text != english, f"no translation for {english!r}"
    assert CJK.search(text), f"{english!r} -> {text!r} holds no Chinese"
    rest = KEPT_ENGLISH.sub(" ", text.replace(values, " ") if values else text)
    left = ENGLISH_PHRASE.search(rest)
    assert left is None, f"{english!r} -> {text!r} leaves English: {left.group(0)!r}"


# -- messages -------------------------------------------------------------------------------------


def test_a_message_is_english_until_it_is_shown() -> None:
    message = msg("Cannot reach {host}: check your internet connection, then retry", host="api.example.com")
    assert str(message) == "Cannot reach api.example.com: check your internet connection, then retry"
    assert chinese(message) == "无法连接 api.example.com：请检查网络连接，然后重试"


def test_values_that_are_messages_are_translated_too() -> None:
    reason = msg("Hitem3D is unavailable (HTTP {status}): retry in a few minutes", status=503)
    retry = msg("Retrying ({attempt} of {limit}): {reason}", attempt=2, limit=6, reason=reason)
    message = msg("Task {short}: {reason}", short="2c2ad20c", reason=retry)
    assert chinese(message) == "任务 2c2ad20c：正在重试（第 2 次，共 6 次）：Hitem3D 暂时不可用（HTTP 503）：请几分钟后重试"


def test_values_are_shown_exactly_as_they_are() -> None:
    message = msg("CA bundle file not found: {path}", path="C:\\Users\\me\\{odd} root.pem")
    assert chinese(message) == "找不到 CA 证书包文件：C:\\Users\\me\\{odd} root.pem"
    assert chinese(errors.message_for_code("99", "Bild zu groß")) == "Hitem3D 返回：Bild zu groß（代码 99）"


def test_text_without_an_entry_is_shown_in_english() -> None:
    assert chinese(messages.verbatim("Something {Hitem3D} never says")) == "Something {Hitem3D} never says"
    assert chinese(messages.NONE) == ""


def test_a_shadowed_word_is_looked_up_in_our_own_context() -> None:
    # Blender's catalogue answers "Starting" with 未完善 ("incomplete") in the default context.
    assert TaskState.PENDING.label.context == OWN
    assert chinese(TaskState.PENDING.label) == "启动中"
    assert (DEFAULT, "Starting") not in CATALOGUE


def test_no_entry_blender_shadows_is_in_the_default_context() -> None:
    assert len(translations.SHADOWED) >= 12  # the 12 seen in Blender 4.3's window, and later ones
    for word in translations.SHADOWED:
        assert (DEFAULT, word) not in CATALOGUE, word
        assert (OWN, word) in CATALOGUE, word


def blender_catalogues() -> list[Path]:
    """Blender's own zh_HANS catalogues on this machine: $HITEM3D_BLENDER_MO, and
    the ones in the real-window tier's Debian chroots (the bpy module has none)."""
    found = [Path(os.environ["HITEM3D_BLENDER_MO"])] if os.environ.get("HITEM3D_BLENDER_MO") else []
    caches = [os.environ.get("HITEM3D_GUI_CACHE", ""), "/var/cache/hitem3d-gui", str(Path.home() / ".cache/hitem3d-gui")]
    for cache in filter(None, caches):
        found += sorted(Path(cache).glob("*/usr/share/locale/zh_HANS/LC_MESSAGES/blender.mo"))
    return [path for path in found if path.is_file()]


@pytest.mark.parametrize("catalogue", blender_catalogues() or [None], ids=str)
def test_no_entry_of_ours_is_answered_by_blender_in_other_words(catalogue: Path | None) -> None:
    """Blender looks its own catalogue up first: an entry it also has must say
    what ours says, or move to our context."""
    if catalogue is None:
        pytest.skip("no Blender zh_HANS catalogue here (set HITEM3D_BLENDER_MO to a blender.mo)")
    with catalogue.open("rb") as file:
        theirs: dict[str, str] = gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
    shadowed = [f"({context!r}, {msgid!r}): Blender says {theirs[key]!r}, we say {ours!r}"
                for (context, msgid), ours in CATALOGUE.items()
                for key in [msgid if context == DEFAULT else f"{context}\x04{msgid}"]
                if theirs.get(key, ours) != ours]
    assert not shadowed


def test_a_message_survives_the_journal_and_a_damaged_one_is_refused() -> None:
    message = msg("Task {short}: {reason}", short="abc", reason=msg("The download was cut short: retry"))
    assert Message.from_dict(message.to_dict()) == message
    for bad in ({"template": "{x} {y}", "values": {"x": 1}}, {"template": 3}, {"template": "a", "values": {"x": [1]}},
                {"template": "{x}", "values": {"x": True}}, "text", None):
        with pytest.raises(ValueError):
            Message.from_dict(bad)


def test_every_translation_keeps_the_placeholders_of_its_template() -> None:
    placeholder = re.compile(r"\{(\w+)\}")
    for (_, english), text in CATALOGUE.items():
        assert sorted(placeholder.findall(text)) == sorted(placeholder.findall(english)), english


def test_every_entry_is_chinese_but_the_names_that_stay_as_they_are() -> None:
    kept = {"Hitem3D", "Client ID", "Client Secret"} | {spec.label for spec in models.MODELS}
    for (_, english), text in CATALOGUE.items():
        if english in kept:
            assert text == english
        elif re.sub(r"\{\w+\}|[\s,.、()（）]", "", english):
            assert CJK.search(text), english


# -- every template in the source ----------------------------------------------------------------
# NOTE: cli.py, diagnostics and log calls stay English on purpose (pipelines
# parse the command line's output; support reads the log): they use str(message).

MARKERS = {"msg": DEFAULT, "N_": None, "msg_own": OWN}  # None: either context
LAYOUT_TEXT = {"label": DEFAULT, "prop": DEFAULT, "progress": DEFAULT, "operator": OPERATOR, "_task_button": OPERATOR}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _source_calls() -> Iterator[tuple[ast.Call, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                yield node, f"{path.relative_to(PACKAGE)}:{node.lineno}"


def source_templates() -> tuple[list[tuple[str | None, str, str]], list[str]]:
    """(context, template, where) of every marked literal, and the places a
    template is built instead (an f-string, a concatenation, a call)."""
    found: list[tuple[str | None, str, str]] = []
    built: list[str] = []
    for call, where in _source_calls():
        name = _name(call.func)
        if (name not in MARKERS and name != "iface") or not call.args:
            continue
        first = call.args[0]
        if name == "iface" and isinstance(first, ast.Constant):
            context = call.args[1] if len(call.args) > 1 else _keyword(call, "context")
            found.append((context.value if isinstance(context, ast.Constant) else DEFAULT, first.value, where))
        elif isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((MARKERS[name], first.value, where))
        elif name != "iface" and not isinstance(first, (ast.Name, ast.Subscript)):  # a table entry or a parameter
            built.append(f"{where}: {name}() needs a literal template")
    return found, built


def test_the_source_check_finds_the_messages_it_is_meant_to() -> None:
    found = {template for _, template, _ in source_templates()[0]}
    for expected in ("No Hitem3D credentials: set Client ID and Client Secret in the add-on preferences",
                     "Hitem3D is unavailable (HTTP {status}): retry in a few minutes", "Task ID copied",
                     "Connecting…", "Imported {count} object(s)", "Hitem3D server error: retry in a few minutes",
                     "Ready to import", "{view} (required)", "Cannot reach {host}: check your internet connection, "
                     "then retry"):
        assert expected in found, expected
    assert len(found) > 150


def test_every_template_in_the_source_has_a_translation() -> None:
    found, _ = source_templates()
    missing = [f"{where}: {template!r}" for context, template, where in found
               if not any((ctx, template) in CATALOGUE for ctx in ([context] if context else [DEFAULT, OWN]))]
    assert not missing


def test_every_template_is_a_literal() -> None:
    assert not source_templates()[1]


def test_masking_and_translation_leave_every_template_of_ours_as_it_is() -> None:
    """Our own words stay ours: masking is for what came from outside (the
    server's words, paths, URLs). Every template in the code, carried by an
    error or loaded back from the journal (both mask), alone or inside another
    message, keeps its words and its translation."""
    register_secret("a-registered-secret-value")
    logged = io.StringIO()
    logger = logging.getLogger("hitem3d-test-templates")
    handler = logging.StreamHandler(logged)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False

    def log_line(*args: object) -> str:
        logged.seek(0)
        logged.truncate()
        logger.warning(*args)
        return logged.getvalue().rstrip("\n")

    changed = []
    for context, template, where in source_templates()[0]:
        for ctx in [context] if context else [DEFAULT, OWN]:
            if (ctx, template) not in CATALOGUE:
                continue
            message = Message(template, {name: "value" for name in re.findall(r"\{(\w+)\}", template)}, ctx)
            wrapped = msg("Task {short}: {reason}", short="2c2ad20c", reason=message)
            for original in (message, wrapped):
                for masked in (Hitem3DError(original).message, clean_message(Message.from_dict(original.to_dict()))):
                    if (masked != original or str(masked) != str(original) or chinese(masked) != chinese(original)
                            or translations.text(masked) != str(original)):
                        changed.append(f"{where}: {template!r} -> {str(masked)!r}")
                # The log masks too: our words reach the log file and the console as they are.
                for line in (log_line("%s", original), log_line("Task failed: %s", Hitem3DError(original)),
                             log_line(original)):
                    if str(original) not in line:
                        changed.append(f"{where}: {template!r} logged as {line!r}")
    logger.removeHandler(handler)
    assert not changed


def test_a_value_from_outside_is_still_masked_inside_our_template() -> None:
    register_secret("a-registered-secret-value")
    record = logging.LogRecord("t", logging.WARNING, "", 0, "%s for %s", (msg(
        "Hitem3D did not accept a fresh access token: check your credentials"), "token=a-registered-secret-value"),
        None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "Hitem3D did not accept a fresh access token: check your credentials for token=***"
    logged = msg("Cannot reach {host}: check your internet connection, then retry", host="a-registered-secret-value")
    assert logged.masked_text() == "Cannot reach ***: check your internet connection, then retry"
    message = Hitem3DError(msg("Cannot reach {host}: check your internet connection, then retry",
                               host="a-registered-secret-value.example.com")).message
    assert str(message) == "Cannot reach ***.example.com: check your internet connection, then retry"
    assert chinese(message) == "无法连接 ***.example.com：请检查网络连接，然后重试"
    assert str(Hitem3DError("the server echoed a-registered-secret-value")) == "the server echoed ***"


def test_every_literal_label_has_an_entry_in_the_context_blender_looks_in() -> None:
    missing = []
    for call, where in _source_calls():
        text, context = _keyword(call, "text"), _keyword(call, "text_ctxt")
        if _name(call.func) in LAYOUT_TEXT and isinstance(text, ast.Constant) and text.value:
            ctx = context.value if isinstance(context, ast.Constant) else LAYOUT_TEXT[_name(call.func)]
            if (ctx, text.value) not in CATALOGUE:
                missing.append(f"{where}: ({ctx!r}, {text.value!r})")
    assert not missing


def test_text_blender_would_look_up_again_is_marked_as_translated() -> None:
    """A ``text=`` built at run time is either a translated message or data (an
    ID, a name): Blender must not look it up again (``translate=False``)."""
    unmarked = []
    for call, where in _source_calls():
        text, translate = _keyword(call, "text"), _keyword(call, "translate")
        if _name(call.func) in LAYOUT_TEXT and text is not None and not isinstance(text, ast.Constant):
            if not (isinstance(translate, ast.Constant) and translate.value is False):
                unmarked.append(where)
    assert not unmarked


def test_every_report_is_translated_where_it_is_shown() -> None:
    untranslated = [where for call, where in _source_calls()
                    if _name(call.func) == "report" and len(call.args) == 2
                    and not (isinstance(call.args[1], ast.Call) and _name(call.args[1].func) == "text")]
    assert not untranslated


# -- messages built from tables: checked with the real functions --------------------------------


def test_every_submission_description_is_translated() -> None:
    for model in models.MODELS:
        for request_type in (RequestType.GEOMETRY_AND_TEXTURE, RequestType.TEXTURE_MESH):
            single = Submission(model.id, model.default_resolution, request_type, image="/tmp/photo.png")
            assert_translated(single.describe(), "photo.png")
            for count in range(1, len(VIEWS) + 1):
                views = Submission(model.id, model.default_resolution, request_type,
                                   views={view: f"/tmp/{view}.png" for view in VIEWS[:count]})
                assert_translated(views.describe())
                assert " or " not in chinese(views.describe()) and ", " not in chinese(views.describe())


def test_every_image_label_is_translated() -> None:
    views = Submission("hi3dv3.0", "2048quality", views={view: f"/tmp/{view}.png" for view in VIEWS})
    for label, _ in [*views.inputs(), *Submission("hi3dv3.0", "2048quality", image="/x.png").inputs()]:
        assert_translated(label)
        assert_translated(msg("{label}: {name} is empty", label=label, name="a.png"), "a.png")


def _validation_error(submission: Submission) -> Hitem3DError:
    with pytest.raises(InvalidSubmission) as info:
        validate(submission)
    return info.value


def test_every_list_of_choices_is_translated_without_an_english_or(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for spec in models.MODELS:
        errors_ = [_validation_error(Submission(spec.id, "999", image=str(image)))]
        if not spec.can_texture_mesh:
            errors_.append(_validation_error(Submission(spec.id, spec.default_resolution, RequestType.TEXTURE_MESH,
                                                        image=str(image))))
        for error in errors_:
            assert_translated(error.message)
            assert " or " not in chinese(error.message), chinese(error.message)


def test_every_waiting_time_is_translated() -> None:
    for seconds in (45, 65, 600, 3600, 7500):
        assert_translated(duration(seconds))
        assert_translated(duration(seconds, units=1))


def test_server_answers_without_words_are_translated() -> None:
    assert chinese(errors.message_for_code("12345", "  ")) == "Hitem3D 返回：无消息（代码 12345）"


def test_a_result_of_unknown_format_is_translated(tmp_path: Path) -> None:
    status = TaskStatus("t", "success", model_url="https://files.example.com/result")
    with pytest.raises(BadResultFile) as info:
        _download(ImportJob("t", tmp_path / "r.glb"), status, None, None, None)  # type: ignore[arg-type]
    assert_translated(info.value.message)


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
    table = addon.i18n.translations.translations_dict()[translations.LOCALE]
    strings = [found for cls in _registered_classes(addon) for found in _class_strings(cls)]
    assert len(strings) > 100
    missing = [f"{where}: ({context!r}, {text!r})" for context, text, where in strings if (context, text) not in table]
    assert not missing


def test_every_dynamic_enum_item_has_a_translation_for_every_model(addon: ModuleType) -> None:
    table = addon.i18n.translations.translations_dict()[translations.LOCALE]
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
    assert addon.i18n.translations.is_registered()
    addon_utils.disable(ADDON_MODULE, default_set=True)
    try:
        assert not addon.i18n.translations.is_registered()
        # Gone from Blender too: the name is free again.
        bpy.app.translations.register(ADDON_MODULE, {translations.LOCALE: {(DEFAULT, "Hitem3D"): "Hitem3D"}})
        bpy.app.translations.unregister(ADDON_MODULE)
    finally:
        addon = enable_addon()
    assert addon.i18n.translations.is_registered()


def test_an_interface_not_in_chinese_shows_every_message_as_it_is(addon: ModuleType) -> None:
    import bpy

    assert bpy.app.translations.locale in ("", "en_US", "DEFAULT") or not bpy.app.build_options.international
    messages_ = addon.core.messages
    cancelled = messages_.msg("Task {short}: {reason}", short="2c2ad20c", reason=addon.core.tasks.TaskState.CANCELLED.label)
    for message, english in ((cancelled, "Task 2c2ad20c: Cancelled"), (messages_.msg("Connecting…"), "Connecting…"),
                             (messages_.verbatim("Something else"), "Something else"), (messages_.NONE, "")):
        assert addon.i18n.translations.text(message) == english
    assert addon.i18n.translations.iface("Import", OPERATOR) == "Import"
    assert addon.i18n.translations.text(duration(65)) == "1m 05s"
    assert addon.i18n.translations.text(duration(3 * 3600 + 120)) == "3h 02m"


def test_with_the_interface_in_chinese_panels_and_reports_show_chinese(addon: ModuleType,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Blender in Chinese, stood in for by a lookup in the registered catalogue:
    what the panels draw and what operators report comes out in Chinese."""
    import bpy

    from tests.support.blender_helpers import TASK_ID
    from tests.blender.test_generate import FakeLayout

    table = addon.i18n.translations.translations_dict()[translations.LOCALE]
    monkeypatch.setattr(addon.i18n.translations, "iface",
                        lambda msgid, context=DEFAULT: table.get((context, msgid), msgid))
    with pytest.raises(RuntimeError) as info:
        bpy.ops.hitem3d.import_task(task_id="not-an-id!")
    assert "不是任务 ID：not-an-id!（不允许使用“!”" in str(info.value)

    errors_ = addon.core.errors
    error = errors_.ServerError(errors_.message_for_code(errors_.CODE_SYSTEM_ERROR, ""))
    rec = addon.engine.control.fail_without_start(TASK_ID, error)
    rec.model = "hitem3dv2.1"
    drawn: list[tuple[str, str]] = []
    addon.ui.panels.draw_details(FakeLayout(drawn), rec, 1000)
    shown = " ".join(text for kind, text in drawn if kind == "label")
    assert "Hitem3D 服务器错误：请几分钟后重试（代码 10000000）" in shown
    assert "失败" in shown  # the state, in our own context
    assert "模型：Hitem3D v2.1" in shown and "结束于 " in shown and "0秒" in shown

    drawn = []
    bpy.types.HITEM3D_PT_main.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
    assert "不是任务 ID：not-an-id!" in " ".join(text for kind, text in drawn if kind == "label")

    drawn = []
    bpy.types.HITEM3D_PT_generate.draw(type("Panel", (), {"layout": FakeLayout(drawn)})(), bpy.context)
    assert ("label", "余额：尚未查询") in drawn
    assert addon.i18n.translations.text(duration(65)) == "1分05秒"
