"""Add-on preferences: where the API is and the credentials.

Preferences live in Blender's user preferences, never in a .blend file, and
every change is also kept in the extension's user folder (``settings.json``,
see ``core.settings_store``) so a disable and enable, or installing the same
version again, loses nothing. The secret field is masked. Which value wins:
a value set here, then the environment variable, then the default (an API
base URL left at its default counts as not set).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .. import identity
from . import connection, ui_sync
from ..i18n import translations
from ..core import conversion
from ..core import settings as core_settings
from ..core import settings_store
from ..core.downloader import DEFAULT_MAX_BYTES
from ..core.errors import OnlineAccessDisabled
from ..core.logs import clean_text
from ..core.messages import OWN_CONTEXT, Message, msg
from ..core import send_queue
from ..core.send_queue import DEFAULT_MAX_RUNNING
from ..core.settings import ApiSettings
from ..engine import conversions, files

from ..identity import ADDON_ID
log = logging.getLogger(__package__)

# (identifier, name, description) for the proxy enum; identifiers are the
# core's proxy modes in upper case.
PROXY_MODE_ITEMS = (
    ("SYSTEM", "System", "The operating system's proxy settings and the usual *_PROXY variables"),
    ("ENVIRONMENT", "Environment", "Only the HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables"),
    ("NONE", "None", "Always connect directly"),
    ("CUSTOM", "Custom", "Every connection through the proxy URL below"),
)


# Set while values are read back from settings.json, so reading them back
# does not write the file again for each one.
_restoring = False


def _changed(prefs: bpy.types.AddonPreferences, _context: bpy.types.Context) -> None:
    """Every change goes to settings.json at once: Blender drops add-on
    preferences on disable, and a crash can come before userpref.blend is saved."""
    if not _restoring:
        save_settings(prefs)


# NOTE: defined before the class: Blender evaluates the property annotations
# while the module is still being executed.
def _library_folder_changed(prefs: Any, context: Any) -> None:
    """Point the "Hitem3D" entry of Preferences > File Paths > Asset Libraries
    at the new folder, if it is registered already."""
    from ..scene import asset_library  # noqa: PLC0415

    _changed(prefs, context)
    if asset_library.is_registered():
        try:
            asset_library.ensure_registered()
        except OSError as exc:
            ui_sync.post_report(msg("Cannot use the asset library folder: {reason}",
                                    reason=exc.strerror or type(exc).__name__), "ERROR")


class HITEM3D_Preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    base_url: StringProperty(  # type: ignore[valid-type]
        update=_changed,
        name="API base URL",
        description="Address of the Hitem3D open API (empty: $HITEM3D_API_BASE or the default)",
        default=core_settings.DEFAULT_BASE_URL,
    )
    client_id: StringProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Client ID",
        description="Access key ID from the Hitem3D platform (empty: $HITEM3D_CLIENT_ID)",
    )
    client_secret: StringProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Client Secret",
        description="Access key secret from the Hitem3D platform (empty: $HITEM3D_CLIENT_SECRET)",
        subtype="PASSWORD",
    )
    poll_interval: FloatProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Check every",
        description="Seconds between two status checks of a running task",
        default=core_settings.DEFAULT_POLL_INTERVAL_S,
        min=0.1,
        soft_min=1.0,
        max=60.0,
        unit="TIME_ABSOLUTE",
    )
    max_running_tasks: IntProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Tasks at once (max)",
        description="At most this many tasks run on your Hitem3D account at once (Hitem3D's default limit is 10); "
                    "further requests wait in a queue and go as tasks end (at 10: $HITEM3D_MAX_TASKS if set)",
        default=DEFAULT_MAX_RUNNING,
        min=1,
        max=100,
    )
    max_download_gb: FloatProperty(  # type: ignore[valid-type]
        update=_changed,
        # NOTE: the unit in the name: Blender has no gigabyte unit for a float.
        name="Largest download (GB)",
        description="Refuse result files larger than this many gigabytes (checked before anything is written)",
        default=2.0,
        precision=1,
        min=0.0001,
        soft_min=0.1,
        soft_max=10.0,
    )
    auto_import: BoolProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Import when ready",
        description="Import each model as soon as it is downloaded (off: wait for a click on Import)",
        default=True,
    )
    max_converters: IntProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Converters at once",
        description="How many hidden Blenders may convert models at the same time; the other models wait their "
                    "turn. They share one memory budget, half of this computer's memory (at most 16 GB)",
        # NOTE: the default follows this computer's memory (4 GB for each, 1 to 4).
        default=conversion.default_at_once(),
        min=1,
        max=conversion.MAX_AT_ONCE,
    )

    asset_library_folder: StringProperty(  # type: ignore[valid-type]
        name="Asset library folder",
        description="Where the Hitem3D asset library keeps one .blend per imported task (a studio share, say); "
                    "empty: the extension's user folder",
        subtype="DIR_PATH",
        update=_library_folder_changed,
    )

    request_timeout: FloatProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Timeout",
        description="Seconds to wait for an answer from Hitem3D or the file host before giving up on a request",
        default=core_settings.DEFAULT_REQUEST_TIMEOUT_S,
        min=1.0,
        max=600.0,
        unit="TIME_ABSOLUTE",
    )
    show_cost_estimate: BoolProperty(  # type: ignore[valid-type]
        name="Show cost estimates",
        description="Show the estimated credits (from Hitem3D's dated price list) and the balance after them "
                    "next to every button that spends credits",
        default=True,
    )
    proxy_mode: EnumProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Proxy",
        # NOTE: our context: Blender's catalogue has "Environment" and "None" as 环境 and 无.
        translation_context=OWN_CONTEXT,
        description="How connections find their proxy",
        items=PROXY_MODE_ITEMS,
        default="SYSTEM",
    )
    proxy_url: StringProperty(  # type: ignore[valid-type]
        update=_changed,
        name="Proxy URL",
        description="http://host:port of the proxy (http://user:password@host:port if it asks for a password)",
    )
    ca_bundle: StringProperty(  # type: ignore[valid-type]
        update=_changed,
        name="CA bundle",
        description="A PEM file of extra certificate authorities to trust, for networks that inspect HTTPS "
                    "(empty: $HITEM3D_CA_BUNDLE, or only the public authorities)",
        subtype="FILE_PATH",
    )

    def settings(self) -> ApiSettings:
        """The resolved settings; raises ``InvalidBaseUrl`` for a bad address
        and ``InvalidNetworkSetting`` for an unusable proxy or CA bundle."""
        return core_settings.resolve(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            poll_interval_s=self.poll_interval,
            request_timeout_s=self.request_timeout,
            proxy_mode=self.proxy_mode.lower(),
            proxy_url=self.proxy_url,
            ca_bundle=bpy.path.abspath(self.ca_bundle) if self.ca_bundle.strip() else "",
        )

    def source_notes(self) -> list[Message]:
        """What the fields above do not show: a value in use that comes from
        the environment (a pipeline's variables, the sandbox's) instead."""
        sources, url = core_settings.where_from(base_url=self.base_url, client_id=self.client_id,
                                                client_secret=self.client_secret)
        notes = []
        if sources.client_id == core_settings.FROM_ENVIRONMENT:
            notes.append(msg("Client ID in use: from HITEM3D_CLIENT_ID"))
        if sources.client_secret == core_settings.FROM_ENVIRONMENT:
            notes.append(msg("Client Secret in use: from HITEM3D_CLIENT_SECRET"))
        if sources.base_url == core_settings.FROM_ENVIRONMENT:
            # Cleaned like any text from outside: a password in it is masked.
            notes.append(msg("API base URL in use: {url}, from HITEM3D_API_BASE", url=clean_text(url)))
        return notes

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "client_id")
        col.prop(self, "client_secret")
        col.prop(self, "base_url")
        for note in self.source_notes():
            col.label(text=translations.text(note), icon="INFO", translate=False)
        col.prop(self, "poll_interval")
        col.prop(self, "max_running_tasks")
        self.draw_network(layout.box())
        row = layout.row()
        row.operator("hitem3d.test_connection", icon="LINKED")
        status = connection.connection_status()
        if status:
            layout.label(text=translations.text(status.text), icon="CHECKMARK" if status.ok else "ERROR",
                         translate=False)
        layout.separator()
        col = layout.column()
        col.prop(self, "auto_import")
        col.prop(self, "show_cost_estimate")
        row = col.row()
        row.label(text=translations.text(msg("Downloaded models: {size} MB", size=f"{files.cache_size() / 1e6:.1f}")),
                  translate=False)
        row.operator("hitem3d.clear_cache", icon="TRASH")
        col.prop(self, "max_download_gb")
        col.prop(self, "max_converters")
        share = conversion.limits_for(self.max_converters, conversions.MEMORY_BUDGET).memory_bytes
        col.label(text=translations.text(msg("Each converter may use up to {share} of memory ({budget} in all)",
                                             share=conversion.size_text(share),
                                             budget=conversion.size_text(conversions.MEMORY_BUDGET))),
                  translate=False)
        col.prop(self, "asset_library_folder")
        layout.operator("hitem3d.copy_diagnostics", icon="COPYDOWN")

    def draw_network(self, box: bpy.types.UILayout) -> None:
        box.label(text="Network", icon="URL")
        col = box.column()
        col.prop(self, "proxy_mode")
        if self.proxy_mode == "CUSTOM":
            col.prop(self, "proxy_url")
        col.prop(self, "ca_bundle")
        col.prop(self, "request_timeout")


def _settings_path() -> Path:
    return identity.settings_path()


def _values(prefs: bpy.types.AddonPreferences) -> dict[str, Any]:
    """Every preference as a plain value, by name (new preferences included)."""
    names = [prop.identifier for prop in prefs.bl_rna.properties if prop.identifier not in ("rna_type", "bl_idname")]
    return {name: getattr(prefs, name) for name in names}


def _bounds(prefs: bpy.types.AddonPreferences) -> dict[str, settings_store.Bounds]:
    """Each preference's own limits (hard min and max, text length, enum
    items): what settings.json may put back."""
    bounds: dict[str, settings_store.Bounds] = {}
    for prop in prefs.bl_rna.properties:
        rna: Any = prop
        if prop.type in {"INT", "FLOAT"}:
            bounds[prop.identifier] = settings_store.Bounds(low=float(rna.hard_min), high=float(rna.hard_max))
        elif prop.type == "STRING" and int(rna.length_max) > 0:
            bounds[prop.identifier] = settings_store.Bounds(max_chars=int(rna.length_max))
        elif prop.type == "ENUM":
            bounds[prop.identifier] = settings_store.Bounds(choices=tuple(item.identifier for item in rna.enum_items))
    return bounds


def save_settings(prefs: bpy.types.AddonPreferences) -> None:
    try:
        settings_store.save(_settings_path(), _values(prefs))
    except OSError as exc:
        log.warning("Could not save the Hitem3D settings: %s", exc)


def restore_settings(prefs: bpy.types.AddonPreferences) -> None:
    """Put the values of settings.json back into freshly made preferences; with
    no file yet, write one from the preferences as they are."""
    global _restoring
    saved = settings_store.load(_settings_path(), _values(prefs), _bounds(prefs))
    if not saved:
        save_settings(prefs)
        return
    _restoring = True
    try:
        for name, value in saved.items():
            try:
                setattr(prefs, name, value)
            except (TypeError, ValueError, AttributeError, OverflowError):  # an enum item that is gone
                log.info("Setting %s not restored", name)
    finally:
        _restoring = False


def _entry_preferences() -> bpy.types.AddonPreferences | None:
    preferences = bpy.context.preferences
    entry = preferences.addons.get(ADDON_ID) if preferences is not None else None
    return entry.preferences if entry is not None else None


def register() -> None:
    # NOTE: enabling adds the add-on's entry before calling register(), with
    # fresh default preferences: this is where the saved values come back.
    prefs = _entry_preferences()
    if prefs is not None:
        restore_settings(prefs)


def unregister() -> None:
    prefs = _entry_preferences()
    if prefs is not None:
        save_settings(prefs)


def usable_settings(context: bpy.types.Context | None = None) -> ApiSettings:
    """Settings ready for a network call, or a ``Hitem3DError`` saying why not."""
    if not bpy.app.online_access:
        raise OnlineAccessDisabled()
    settings = get(context).settings()
    settings.require_credentials()
    return settings


def auto_import() -> bool:
    return bool(get().auto_import)


# The unusable $HITEM3D_MAX_TASKS values already logged (the limit is read on every timer tick).
_limit_warned: set[str] = set()


def max_running_tasks() -> int:
    """The limit of running tasks: the preference, else ``$HITEM3D_MAX_TASKS``
    (``send_queue.limit_from``). An unusable variable is logged once and the
    default applies (the command line refuses it with exit code 2)."""
    try:
        return send_queue.limit_from(int(get().max_running_tasks))
    except send_queue.InvalidLimit as exc:
        if str(exc) not in _limit_warned:
            _limit_warned.add(str(exc))
            log.warning("%s: using %d", exc, DEFAULT_MAX_RUNNING)
        return DEFAULT_MAX_RUNNING


def show_cost_estimate() -> bool:
    return bool(get().show_cost_estimate)


def max_download_bytes() -> int:
    gigabytes = float(get().max_download_gb)
    # NOTE: a script can set NaN or infinity, which Blender does not clamp.
    return int(gigabytes * 1e9) if math.isfinite(gigabytes) and gigabytes > 0 else DEFAULT_MAX_BYTES


def max_converters() -> int:
    return int(get().max_converters)


def get(context: bpy.types.Context | None = None) -> HITEM3D_Preferences:
    preferences = (context or bpy.context).preferences
    assert preferences is not None
    addon_prefs: HITEM3D_Preferences = getattr(preferences.addons[ADDON_ID], "preferences")
    return addon_prefs


classes = (HITEM3D_Preferences,)
