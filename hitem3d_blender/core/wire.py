"""What Blender and the worker process say to each other, as lines of JSON.

One message per line, each a JSON object with an ``op``. Both ends are ours,
but a line is still input: ``decode_*`` check what they read and raise
``ValueError`` for anything else, so a damaged line costs one message, never
the connection.

NOTE: JSON, not pickle: a line can never make the reader run code.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Mapping

from .jobs import CallResult
from .messages import NONE, Message
from .pipeline import ImportJob
from .settings import ApiSettings
from .tasks import TaskState, TaskUpdate

# A line longer than this is not ours (a journal update carries at most a
# batch of records; a result is a few hundred bytes).
MAX_LINE_BYTES = 64 * 1024 * 1024


# One encoder for every line: ``json.dumps`` with options builds a new one a call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(message: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(message).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line.decode("utf-8"))
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError("not a message")
    return message


class LineBuffer:
    """Bytes in, complete lines out (the last, partial line waits for more)."""

    def __init__(self) -> None:
        self._data = bytearray()

    @property
    def pending(self) -> bytearray:
        """The partial line that waits for more (not a copy: read it before the next ``feed``)."""
        return self._data

    def feed(self, data: bytes) -> list[bytes]:
        self._data += data
        if b"\n" not in data:
            if len(self._data) > MAX_LINE_BYTES:
                raise ValueError("a line too long")
            return []
        *lines, rest = bytes(self._data).split(b"\n")
        self._data = bytearray(rest)
        return lines


# -- values ------------------------------------------------------------------------------------


# Settings that are secrets: they travel apart from the rest (``worker_process``).
SECRET_SETTINGS = ("client_secret", "proxy_url")


def settings_to_wire(settings: ApiSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings without their secrets, and the secrets by name."""
    data = dataclasses.asdict(settings)
    secrets = {"client_secret": data.pop("client_secret"), "proxy_url": data["network"].pop("proxy_url")}
    return data, {name: value for name, value in secrets.items() if value}


def settings_from_wire(data: Any, secrets: dict[str, str] | None = None) -> ApiSettings:
    if not isinstance(data, dict) or not isinstance(data.get("network"), dict):
        raise ValueError("not settings")
    secrets = secrets or {}
    settings = _frozen(ApiSettings, {**data, "client_secret": secrets.get("client_secret", ""),
                                     "network": {**data["network"], "proxy_url": secrets.get("proxy_url", "")}})
    assert isinstance(settings, ApiSettings)
    return settings


def _frozen(cls: type, data: Mapping[str, Any]) -> Any:
    """A frozen dataclass from its plain form: nested ones built by their
    field's type, lists made tuples (settings are dictionary keys, so hashable)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name not in data:
            continue
        value, kind = data[item.name], hints.get(item.name)
        if isinstance(value, dict) and isinstance(kind, type) and dataclasses.is_dataclass(kind):
            value = _frozen(kind, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[item.name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"not a {cls.__name__}") from exc


_PATH_FIELDS = ("dest", "cover_dest")


def job_to_wire(job: ImportJob) -> dict[str, Any]:
    # NOTE: flat, so not ``asdict``: its deep copy of the two paths was half of
    # what pasting 1,000 task IDs cost the main thread (120 of 250 ms).
    data = {item.name: getattr(job, item.name) for item in dataclasses.fields(job)}
    for name in _PATH_FIELDS:
        if data.get(name) is not None:
            data[name] = str(data[name])
    return data


def job_from_wire(data: Any) -> ImportJob:
    if not isinstance(data, dict):
        raise ValueError("not a job")
    values = dict(data)
    for name in _PATH_FIELDS:
        if values.get(name) is not None:
            values[name] = Path(values[name])
    try:
        return ImportJob(**values)
    except TypeError as exc:
        raise ValueError("not a job") from exc


def message_from_wire(data: Any) -> Message:
    return NONE if data is None else Message.from_dict(data)


def update_to_wire(update: TaskUpdate) -> dict[str, Any]:
    data = {item.name: getattr(update, item.name) for item in dataclasses.fields(update)}
    data["state"] = update.state.value
    data["message"] = update.message.to_dict() if update.message else None
    return {"op": "update", **data}


def update_from_wire(data: Mapping[str, Any]) -> TaskUpdate:
    values = {name: value for name, value in data.items() if name != "op"}
    try:
        values["state"] = TaskState(values["state"])
        values["message"] = message_from_wire(values.get("message"))
        update = TaskUpdate(**values)
    except (KeyError, TypeError) as exc:
        raise ValueError("not an update") from exc
    if not isinstance(update.task_id, str) or not isinstance(update.run, int):
        raise ValueError("not an update")
    return update


def call_result_to_wire(result: CallResult) -> dict[str, Any]:
    return {"op": "call_result", "key": result.key, "value": result.value,
            "error": result.error.to_dict() if result.error else None}


def call_result_from_wire(data: Mapping[str, Any]) -> tuple[str, Any, Message]:
    """(key, value as sent, error): the caller decodes the value by its call's name."""
    key = data.get("key")
    if not isinstance(key, str):
        raise ValueError("not a call result")
    return key, data.get("value"), message_from_wire(data.get("error"))
