"""Add-on preferences: where the API is and the credentials.

Preferences live in Blender's user preferences, never in a .blend file. The
secret field is masked; empty fields fall back to environment variables.
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from . import bridge
from .core import settings as core_settings
from .core.errors import OnlineAccessDisabled
from .core.settings import ApiSettings

ADDON_ID = __package__ or "hitem3d_blender"


class HITEM3D_Preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    base_url: StringProperty(  # type: ignore[valid-type]
        name="API base URL",
        description="Address of the Hitem3D open API (empty: $HITEM3D_API_BASE or the default)",
        default=core_settings.DEFAULT_BASE_URL,
    )
    client_id: StringProperty(  # type: ignore[valid-type]
        name="Client ID",
        description="Access key ID from the Hitem3D platform (empty: $HITEM3D_CLIENT_ID)",
    )
    client_secret: StringProperty(  # type: ignore[valid-type]
        name="Client Secret",
        description="Access key secret from the Hitem3D platform (empty: $HITEM3D_CLIENT_SECRET)",
        subtype="PASSWORD",
    )
    poll_interval: FloatProperty(  # type: ignore[valid-type]
        name="Check every",
        description="Seconds between two status checks of a running task",
        default=core_settings.DEFAULT_POLL_INTERVAL_S,
        min=0.1,
        soft_min=1.0,
        max=60.0,
        unit="TIME_ABSOLUTE",
    )
    auto_import: BoolProperty(  # type: ignore[valid-type]
        name="Import when ready",
        description="Import each model as soon as it is downloaded (off: wait for a click on Import)",
        default=True,
    )

    def settings(self) -> ApiSettings:
        """The resolved settings; raises ``InvalidBaseUrl`` for a bad address."""
        return core_settings.resolve(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            poll_interval_s=self.poll_interval,
        )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "client_id")
        col.prop(self, "client_secret")
        col.prop(self, "base_url")
        col.prop(self, "poll_interval")
        row = layout.row()
        row.operator("hitem3d.test_connection", icon="LINKED")
        status = bridge.connection_status()
        if status:
            layout.label(text=status.text, icon="CHECKMARK" if status.ok else "ERROR")
        layout.separator()
        col = layout.column()
        col.prop(self, "auto_import")
        row = col.row()
        row.label(text=f"Downloaded models: {bridge.cache_size() / 1e6:.1f} MB")
        row.operator("hitem3d.clear_cache", icon="TRASH")


def usable_settings(context: bpy.types.Context | None = None) -> ApiSettings:
    """Settings ready for a network call, or a ``Hitem3DError`` saying why not."""
    if not bpy.app.online_access:
        raise OnlineAccessDisabled()
    settings = get(context).settings()
    settings.require_credentials()
    return settings


def auto_import() -> bool:
    return bool(get().auto_import)


def get(context: bpy.types.Context | None = None) -> HITEM3D_Preferences:
    preferences = (context or bpy.context).preferences
    assert preferences is not None
    addon_prefs: HITEM3D_Preferences = getattr(preferences.addons[ADDON_ID], "preferences")
    return addon_prefs


classes = (HITEM3D_Preferences,)
