""""Copy diagnostics": what support needs to know, with no secret in it."""

from __future__ import annotations

import platform
import time
import tomllib
from collections import Counter
from pathlib import Path

import bpy
import requests
import urllib3

from .. import identity
from ..core import logs
from ..core.logs import RecentProblems, redact
from ..core.settings import (ENV_BASE_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, FROM_ENVIRONMENT, FROM_PREFERENCES,
                             where_from)
from ..core.tasks import TaskRecord, TaskState
from ..engine import files, history

# How many failed tasks the report lists, newest first: enough for a bad
# afternoon, short enough to paste.
FAILED_TASKS_SHOWN = 10
recent_problems = RecentProblems()


def log_path() -> Path:
    return identity.log_path()


def addon_version() -> str:
    try:
        manifest = tomllib.loads((Path(__file__).parents[1] / "blender_manifest.toml").read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(manifest.get("version", "unknown"))


def _source(source: str, env_name: str, unset: str = "not set") -> str:
    """Where a setting came from, in the report's English (support reads it)."""
    return {FROM_ENVIRONMENT: f"from ${env_name}", FROM_PREFERENCES: "set in preferences"}.get(source, unset)


def failed_task_lines(records: list[TaskRecord], limit: int = FAILED_TASKS_SHOWN) -> list[str]:
    """``<short ID>  <when>  <message>`` for the newest failed tasks, in
    English (support reads it), newest first."""
    failed = [rec for rec in records if rec.state is TaskState.FAILED]
    failed.sort(key=lambda rec: rec.finished_at or rec.started_at, reverse=True)
    return [f"{rec.short_id}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(rec.finished_at or rec.started_at))}"
            f"  {rec.message}" for rec in failed[:limit]]


def report(context: bpy.types.Context) -> str:
    """A plain-text report: versions, settings (secrets only as set/not set),
    task counts, the recent failed tasks and the last problems."""
    from . import preferences

    logs.write_held(until=0.0, final=True)  # the log file it names holds every line so far
    prefs = preferences.get(context)
    sources, base_url = where_from(base_url=prefs.base_url, client_id=prefs.client_id,
                                  client_secret=prefs.client_secret)
    states = Counter(str(rec.state.label) for rec in history.book())
    lines = [
        f"Hitem3D for Blender {addon_version()}",
        f"Blender {bpy.app.version_string}, Python {platform.python_version()}, {platform.platform()}",
        f"requests {requests.__version__}, urllib3 {urllib3.__version__}",
        f"Online access: {'on' if bpy.app.online_access else 'off'}",
        f"API base URL: {base_url} ({_source(sources.base_url, ENV_BASE_URL, unset='default')})",
        f"Client ID: {_source(sources.client_id, ENV_CLIENT_ID)}",
        f"Client Secret: {_source(sources.client_secret, ENV_CLIENT_SECRET)}",
        f"Check every: {prefs.poll_interval:g} s; import when ready: {'on' if prefs.auto_import else 'off'}",
        "Tasks: " + (", ".join(f"{count} {state.lower()}" for state, count in sorted(states.items())) or "none"),
        f"Log file: {log_path()}",
        "Recent failed tasks:",
        *(f"  {line}" for line in failed_task_lines(list(history.book())) or ["none"]),
        "Recent problems:",
        *(f"  {line}" for line in recent_problems.lines() or ["none"]),
    ]
    return redact("\n".join(lines))
