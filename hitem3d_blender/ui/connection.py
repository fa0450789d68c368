"""The "Test Connection" button: its call and what the preferences show of it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from . import ui_sync
from ..core import calls
from ..core.jobs import CallResult
from ..core.messages import Message, msg
from ..core.settings import ApiSettings
from ..engine import control

CONNECTION_KEY = "connection-test"


@dataclass(frozen=True)
class ConnectionStatus:
    ok: bool
    text: Message


_status: list[ConnectionStatus] = []  # the latest, or none since the last reset
# The API address the latest test went to, as the artist should read it: the
# host, and where the address came from when not from the preferences' field.
_tested: list[Message] = []


def connection_status() -> ConnectionStatus | None:
    return _status[-1] if _status else None


def set_connection_status(ok: bool, text: Message) -> None:
    _status[:] = [ConnectionStatus(ok, text)]
    ui_sync.redraw()


def test_connection(settings: ApiSettings) -> None:
    host = urlsplit(settings.base_url).netloc
    _tested[:] = [settings.sources.about_base_url(msg("Connected to {host}: credentials accepted", host=host))]
    _status[:] = [ConnectionStatus(True, msg("Connecting…"))]
    control.start_call(CONNECTION_KEY, settings, calls.fetch_token())


def apply_call(result: CallResult) -> bool:
    """Apply the connection test's result; False for other calls."""
    if result.key != CONNECTION_KEY:
        return False
    if result.ok:
        set_connection_status(True, _tested[-1] if _tested else msg("Connected: credentials accepted"))
        ui_sync.post_report(msg("Hitem3D connection OK"), "INFO")
    else:
        set_connection_status(False, result.error)
        ui_sync.post_report(result.error, "ERROR")
    return True


def reset() -> None:
    _status.clear()
    _tested.clear()
