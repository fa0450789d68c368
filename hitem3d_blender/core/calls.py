"""One-off calls a worker makes for the main thread, as named operations.

The workers run in a process of their own (``worker_process``), so a call
crosses to them as a name and plain values, never as a function: ``Call``
says what to do, ``run`` does it there with the worker's client and returns a
JSON value, and ``decode`` turns that value back into what the caller reads
from ``CallResult.value`` (a float for a balance, a ``TaskStatus`` for a
status). Adding a call is one function that makes its ``Call`` and one entry
in ``_CALLS``; the worker's side is a pure function of the client and the
call's values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Union

from . import kept_sends, send_queue
from .api import Hitem3DClient, TaskStatus
from .errors import GenerationFailed, Hitem3DError, NotFollowable
from .kind_requests import KindRequest
from .mesh_upload import HITEM3D_STORAGE, StorageTarget
from .messages import Message
from .submission import Submission

Request = Union[Submission, KindRequest]


@dataclass(frozen=True)
class Call:
    """A call by name, with plain (JSON) values only."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


# -- what the main thread asks for -------------------------------------------------------------


def fetch_token() -> Call:
    """Ask for a token: the connection test. The value is True."""
    return Call("fetch_token")


def balance() -> Call:
    """The account's credits, a float."""
    return Call("balance")


def submit(request: Request, storage: StorageTarget = HITEM3D_STORAGE) -> Call:
    """Create a task on Hitem3D (``send_queue.create_task``: an own mesh is
    uploaded to ``storage`` first); the value is the new task's ID, or the
    ``send_queue.Refused`` this version cannot place."""
    kind = "kind" if isinstance(request, KindRequest) else "task"
    return Call("submit", {"kind": kind, "request": _fields(request), "storage": dataclasses.asdict(storage)})


def refuse(error: Hitem3DError) -> Call:
    """A call that fails with ``error``'s message on the worker: a refusal
    found on the main thread comes back like any other."""
    return Call("refuse", {"message": error.message.to_dict()})


def remote_state(task_id: str) -> Call:
    """A task's state on Hitem3D as a word ("failed" for a failed one)."""
    return Call("remote_state", {"task_id": task_id})


def query_task(task_id: str) -> Call:
    """A task's state now: a ``TaskStatus``, or the ``GenerationFailed``
    that says it failed, or the ``NotFollowable`` that says this version
    cannot follow it (states, not failures to ask)."""
    return Call("query_task", {"task_id": task_id})


# -- what a worker does -------------------------------------------------------------------------


def _fields(request: Request) -> dict[str, Any]:
    """Every field of a request, signed links included (``to_dict`` leaves
    those out: it is the journal's view)."""
    values = {item.name: getattr(request, item.name) for item in dataclasses.fields(request)}
    return {name: dict(value) if isinstance(value, Mapping) else list(value) if isinstance(value, tuple) else value
            for name, value in values.items()}


def _request(args: Mapping[str, Any]) -> Request:
    values = dict(args["request"])
    if args["kind"] == "kind":
        return KindRequest(**values)
    if isinstance(values.get("mesh_box"), list):
        values["mesh_box"] = tuple(values["mesh_box"])
    return Submission(**values)


def _submit(client: Hitem3DClient, args: Mapping[str, Any]) -> dict[str, Any]:
    created = send_queue.create_task(client, _request(args), storage=StorageTarget(**args["storage"]))
    if isinstance(created, send_queue.Refused):
        return {"refused": {"message": created.message.to_dict(), "code": created.code}}
    return {"task_id": created}


def _created(value: Any) -> str | send_queue.Refused:
    if isinstance(value.get("refused"), dict):
        refused = value["refused"]
        return send_queue.Refused(Message.from_dict(refused["message"]), str(refused["code"]))
    return str(value["task_id"])


def _refuse(client: Hitem3DClient, args: Mapping[str, Any]) -> None:
    raise Hitem3DError(Message.from_dict(args["message"]))


def _query_task(client: Hitem3DClient, args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        status = client.query_task(str(args["task_id"]))
    except GenerationFailed as exc:
        return {"failed": exc.message.to_dict()}
    except NotFollowable:
        return {"not_followable": True}
    return {"status": dataclasses.asdict(status)}


def _status_of(value: Any) -> TaskStatus | GenerationFailed | NotFollowable:
    if isinstance(value, dict) and isinstance(value.get("failed"), dict):
        return GenerationFailed(Message.from_dict(value["failed"]))
    if isinstance(value, dict) and value.get("not_followable") is True:
        return NotFollowable()
    return TaskStatus(**value["status"])


class _Spec(NamedTuple):
    run: Callable[[Hitem3DClient, Mapping[str, Any]], Any]  # in the worker: a JSON value
    decode: Callable[[Any], Any]  # on the main thread: what ``CallResult.value`` holds


def _same(value: Any) -> Any:
    return value


_CALLS: dict[str, _Spec] = {
    "fetch_token": _Spec(lambda client, args: bool(client.fetch_token()), _same),
    "balance": _Spec(lambda client, args: client.balance(), float),
    "submit": _Spec(_submit, _created),
    "remote_state": _Spec(lambda client, args: send_queue.remote_state(client, str(args["task_id"])), str),
    "refuse": _Spec(_refuse, _same),
    "query_task": _Spec(_query_task, _status_of),
}


def run(call: Call, client: Hitem3DClient) -> Any:
    """Do ``call`` with ``client`` (in a worker); returns a JSON value."""
    return _CALLS[call.name].run(client, call.args)


def decode(name: str, value: Any) -> Any:
    """A worker's JSON value of call ``name`` as the caller reads it.
    Raises ``ValueError`` for a value that is not one."""
    try:
        return _CALLS[name].decode(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a value of call {name!r}") from exc


def known(name: str) -> bool:
    return name in _CALLS


# -- writes the worker process does for the main thread -----------------------------------------


@dataclass(frozen=True)
class Write:
    """A small file of ours written off Blender's process, by name, with
    plain (JSON) values only; the newest for a key replaces one not yet done."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


def kept_requests(path: Path, data: bytes) -> Write:
    """The requests not yet sent (``kept_sends.encode``: JSON text)."""
    return Write("kept_requests", {"path": str(path), "data": data.decode("utf-8")})


_WRITES: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "kept_requests": lambda args: kept_sends.write(Path(args["path"]), str(args["data"]).encode("utf-8")),
}


def write(item: Write) -> None:
    """Do ``item`` (in the worker process, or here when none can)."""
    _WRITES[item.name](item.args)


def known_write(name: str) -> bool:
    return name in _WRITES
