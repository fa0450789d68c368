"""Where a fact about Hitem3D's API comes from, so every table can say it.

The sources are uneven (docs/hitem3d-api.md): an official API page, the
vendor's own client (which runs against the real service), or third-party
clients only. A fact of the last kind is unconfirmed: the interface says so
before anything is spent, and the client survives it being wrong. No ``bpy``.
"""

from __future__ import annotations

import enum


class Source(str, enum.Enum):
    DOC = "doc"  # an official API reference page (docs.hitem3d.ai, docs.hi3d.ai)
    VENDOR = "vendor"  # Hitem3D's own public client (dev-hitem/hitem3d-comfyUI)
    COMMUNITY = "community"  # third-party clients only: unconfirmed

    @property
    def confirmed(self) -> bool:
        """An official page or the vendor's client says it."""
        return self is not Source.COMMUNITY
