"""A local stand-in for the Hitem3D open API (the facts it follows: docs/hitem3d-api.md).

The real service cannot be reached from tests, so this simulator answers the
same routes on 127.0.0.1 with the documented bodies and error codes, records
every request (tests assert that secrets only travel where they should), and
injects network faults on demand.  Standard library only.

    with Hitem3DSimulator() as sim:
        sim.add_task("t1", ["queueing", {"state": "processing", "progress": 40}, "success"])
        sim.inject("/files/", Fault.truncate(100))
        ...  # point the client at sim.base_url
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import string
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import HeaderParser
from email.policy import HTTP
from email.utils import collapse_rfc2231_value
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Literal, Union
from urllib.parse import parse_qsl, quote, unquote, urlsplit

try:
    from .glb_factory import minimal_glb_bytes
    from .kind_assets import colour_glb_bytes, depth_png_bytes, parts_glb_bytes
except ImportError:  # imported as a top-level module with tests/ on sys.path
    from glb_factory import minimal_glb_bytes  # type: ignore[no-redef]
    from kind_assets import colour_glb_bytes, depth_png_bytes, parts_glb_bytes  # type: ignore[no-redef]

API = "/open-api/v1"

# Validation data, each fact with its source (docs/hitem3d-api.md): [doc] an
# official API page, [vendor] Hitem3D's own client (dev-hitem/hitem3d-comfyUI),
# [community] third-party clients only. Kept as data: the model list grows.
MODEL_RESOLUTIONS: dict[str, frozenset[str]] = {
    "hitem3dv1": frozenset({"512", "1024", "1536"}),  # [doc]
    "hitem3dv1.5": frozenset({"512", "1024", "1536", "1536pro"}),  # [doc]
    "hitem3dv2.0": frozenset({"1536", "1536pro"}),  # [doc]
    "hitem3dv2.1": frozenset({"1536fast", "1536pro"}),  # [vendor]
    "hi3dv3.0": frozenset({"2048quality", "2048master"}),  # [community]
    "scene-portraitv1.5": frozenset({"1536"}),  # [doc]
    "scene-portraitv2.0": frozenset({"1536pro"}),  # [doc] the model; [vendor] its resolution
    "scene-portraitv2.1": frozenset({"1536profast", "1536pro"}),  # [vendor]
}
MIN_FACE = 100_000  # [vendor] (its face input's range)
MAX_FACE = 2_000_000  # [vendor]
MAX_FACE_BY_MODEL: dict[str, int] = {"hi3dv3.0": 5_000_000}  # [community]
FORMAT_EXTENSIONS: dict[str, str] = {"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz", "6": "3mf"}
IMAGE_EXTENSIONS = frozenset({"png", "jpeg", "jpg", "webp"})  # [doc]
MAX_IMAGE_BYTES = 20_000_000  # [doc] "20 MB", decimal
MAX_MESH_BYTES = 200_000_000  # [doc] "200 MB" (the kinds' mesh), decimal
# request_type 2: the models of the vendor's texture node, less v2.0 ("v2.0
# models do not support request_type=2" [doc]); v3.0 [community].
TEXTURE_MESH_MODELS = frozenset({"hitem3dv2.1", "hitem3dv1.5", "scene-portraitv1.5", "hi3dv3.0"})


# The scheme before the token in ``Authorization``, per route, as the pages
# show it. "Bearer" on submit-task, query-task, balance, depth create and
# query [doc]; "Token" on split and segmentation create [doc] and split query
# [community]; "any" where nothing says (the unpublished paths).
BEARER, TOKEN, ANY = "Bearer", "Token", "any"
ROUTE_AUTH: dict[str, str] = {
    f"{API}/submit-task": BEARER,
    f"{API}/query-task": BEARER,
    f"{API}/balance": BEARER,
    f"{API}/upload/token": BEARER,  # [vendor]: its client calls it with Bearer
}
# How the simulator serves an unpublished query path (``query_routes``):
OWN_PATH = "own"  # at the kind's own path
GENERIC_ONLY = "generic"  # only at /query-task, which then knows the kind's tasks
UNSERVED = "none"  # nowhere: the own path is 404 and /query-task knows nothing of it


@dataclass(frozen=True)
class KindRoute:
    """One of the newer task kinds as the service documents it: its routes
    and their schemes, what its create request takes, and what it costs."""

    prefix: str  # of its task IDs
    create: str
    query: str
    create_auth: str
    query_auth: str
    source_field: str  # the uploaded file part
    url_field: str  # the same as a link
    source_extensions: frozenset[str]
    max_source_bytes: int
    formats: Mapping[str, str]  # format code -> result extension
    choices: Mapping[str, frozenset[str]]  # field -> allowed values
    numbers: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # field -> (min, max)
    required: tuple[str, ...] = ()  # fields every request must send
    required_by_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ``model`` value -> its fields
    default_model: str = ""  # what a request without ``model`` gets
    has_cover: bool = True
    cost: float = 20.0  # [community] price lists


_MESH_EXTENSIONS = frozenset({"glb", "stl", "obj"})
_LEVELS = frozenset({"low", "medium", "high"})
_MESH_FORMATS = {"1": "obj", "2": "glb", "3": "stl", "4": "fbx", "5": "usdz"}
KIND_ROUTES: dict[str, KindRoute] = {
    # [doc] create (Token); the query path [community] (no page is published).
    # ``model`` character (the default) needs ``part`` and ``joint``, general
    # needs ``level``; ``format`` defaults to 1, and a character split gives GLB (2) only [doc].
    "split": KindRoute(
        "split_", f"{API}/split/create-task", f"{API}/split/query-task", TOKEN, TOKEN, "mesh", "mesh_url",
        _MESH_EXTENSIONS, MAX_MESH_BYTES, _MESH_FORMATS,
        {"model": frozenset({"character", "general"}), "part": frozenset("abcdef"),
         "joint": frozenset({"none", "ball", "dovetail"}), "level": _LEVELS},
        required_by_model={"character": ("part", "joint"), "general": ("level",)}, default_model="character",
    ),
    # [doc] create (Token): ``seg_level`` and ``format`` required, no default.
    # The query path is unpublished: one third-party client's guess; scheme unknown.
    "segmentation": KindRoute(
        "segmentation_", f"{API}/segmentation/create-task", f"{API}/segmentation/query-task", TOKEN, ANY,
        "mesh", "mesh_url", _MESH_EXTENSIONS, MAX_MESH_BYTES, _MESH_FORMATS, {"seg_level": _LEVELS},
        required=("seg_level", "format"),
    ),
    # [doc] create and query (Bearer): ``model_type`` ("pro" the only documented
    # value), ``rmbg`` and ``format`` required; no height field is documented.
    "depth": KindRoute(
        "depth_", f"{API}/depth/create-task", f"{API}/depth/query-task", BEARER, BEARER, "image", "image_url",
        IMAGE_EXTENSIONS, MAX_IMAGE_BYTES, {"1": "exr", "2": "png"},
        {"model_type": frozenset({"pro"}), "rmbg": frozenset({"0", "1"})},
        required=("model_type", "rmbg", "format"), has_cover=False, cost=10.0,
    ),
    # [community] only: paths (the service spells them "muilticolor"), fields;
    # scheme and required fields unknown.
    "multicolor": KindRoute(
        "multicolor_", f"{API}/muilticolor/create-task", f"{API}/muilticolor/query-task", ANY, ANY,
        "mesh", "mesh_url", _MESH_EXTENSIONS, MAX_MESH_BYTES, {"1": "obj", "2": "glb", "4": "fbx", "6": "3mf"},
        {"model": frozenset({"multicolor"})}, numbers={"number_color": (0, 8)},
    ),
}
# ---- the object storage that takes an artist's own mesh to texture ----
# Source [vendor] (dev-hitem/hitem3d-comfyUI, api/utils.py): the client asks
# GET /open-api/v1/upload/token (Bearer) for data.accessKeyId,
# data.secretAccessKey and data.sessionKey, PutObjects the mesh to Volcengine TOS
# (bucket mm-sparc3d-prod, region ap-southeast-1) under a key of its own, and
# sends mesh_url = https://hitem3dstatic.zaohaowu.net/<key> with request_type 2.
# The storage checks the TOS4-HMAC-SHA256 signature the way Volcengine's SDK
# makes it (tos/auth.py: canonical request, string to sign, key chain), written
# out here on its own, never borrowed from the add-on's signer.
STORAGE_REGION = "ap-southeast-1"
STORAGE_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# ASSUMPTION: TOS, like S3, refuses a request dated more than 15 minutes off.
STORAGE_MAX_SKEW_S = 15 * 60
_TOS_AUTHORIZATION = re.compile(r"TOS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/tos/request, "
                                r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")

# The kinds whose query path no official page publishes: served per ``query_routes``.
UNPUBLISHED_QUERIES = ("split", "segmentation", "multicolor")
# A mesh the service cannot work with holds this near its start (a file that
# looks like a GLB to a client): the task is created, then fails with the refund code.
BAD_MESH_MARK = b"not a mesh"
CODE_GENERATE_FAILED_KINDS = 5001001

# [doc] FAQ: "Default 10 concurrent tasks" per account. What the service answers
# to one task too many is NOT documented: this code and text are ours, unknown to
# the client on purpose (it must read an unplaced refusal while its tasks run as
# "wait and resend"). Used in the limit mode (``max_running_tasks``).
DOCUMENTED_MAX_RUNNING = 10
CODE_TOO_MANY_TASKS = 30020000
_RUNNING_STATES = frozenset({"created", "queueing", "processing"})

# A 1x1 lossless WebP: the cover of tasks that were not given one.
TINY_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")

StateEntry = Union[str, Mapping[str, Any]]
BodySource = Union[bytes, Path]  # a Path is streamed from disk, never read whole
FileLike = Union[bytes, str, "os.PathLike[str]"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # as sent, real values included
    body: bytes
    connection_id: int
    time: float
    storage: bool = False  # came to the object storage, not the API


    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup (HTTP header names are)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class Submission:
    fields: dict[str, str]
    files: list[tuple[str, str, str, bytes]]  # (field name, filename, content type, data), in order
    task_id: str = ""
    path: str = f"{API}/submit-task"  # the create route it came to


# ---- faults ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Canned:
    """Answer this instead of the real response (the request is not processed)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait, then answer normally."""

    seconds: float


@dataclass(frozen=True)
class Truncate:
    """Real headers with the full Content-Length, then only n_bytes of body, then close."""

    n_bytes: int


@dataclass(frozen=True)
class Reset:
    """Abort with a TCP RST after after_bytes of body."""

    after_bytes: int


@dataclass(frozen=True)
class Stall:
    """Send after_bytes of body, go silent for seconds, then close."""

    after_bytes: int
    seconds: float


@dataclass(frozen=True)
class AnnounceLength:
    """Announce this Content-Length, send the real body, then close."""

    content_length: int


@dataclass(frozen=True)
class CutRequest:
    """Read only after_bytes of the request's body, then abort with a TCP RST:
    the connection dies mid-upload."""

    after_bytes: int


BodyFault = Union[Truncate, Reset, Stall, AnnounceLength]
FaultKind = Union[Canned, Delay, BodyFault, CutRequest]


class Fault:
    """Factory for the fault kinds accepted by `Hitem3DSimulator.inject`."""

    @staticmethod
    def status(code: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Canned:
        return Canned(code, body, dict(headers or {}))

    @staticmethod
    def json(obj: Any, status: int = 200) -> Canned:
        return Canned(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def raw(body: bytes, content_type: str, status: int = 200) -> Canned:
        return Canned(status, body, {"Content-Type": content_type})

    @staticmethod
    def delay(seconds: float) -> Delay:
        return Delay(seconds)

    @staticmethod
    def truncate(n_bytes: int) -> Truncate:
        return Truncate(n_bytes)

    @staticmethod
    def reset(after_bytes: int = 0) -> Reset:
        return Reset(after_bytes)

    @staticmethod
    def stall(after_bytes: int, seconds: float) -> Stall:
        return Stall(after_bytes, seconds)

    @staticmethod
    def content_length(n: int) -> AnnounceLength:
        return AnnounceLength(n)

    @staticmethod
    def cut_request(after_bytes: int = 0) -> CutRequest:
        return CutRequest(after_bytes)


# ---- internal state -------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: BodySource = b""
    headers: dict[str, str] = field(default_factory=dict)
    throttle: bool = False  # file bodies obey file_rate_limit

    def length(self) -> int:
        return len(self.body) if isinstance(self.body, bytes) else self.body.stat().st_size


def _json_reply(obj: Any, status: int = 200) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def _api_error(code: int, msg: str) -> _Reply:
    # API-level errors travel with HTTP 200; only the body says what went wrong.
    return _json_reply({"code": code, "msg": msg, "data": {}})


@dataclass
class _File:
    source: BodySource
    content_type: str
    auth_key: str
    expired: bool = False


@dataclass
class _Task:
    states: list[StateEntry]
    glb: BodySource
    cover: BodySource
    extension: str
    queries: int = 0
    urls: tuple[str, str] | None = None
    file_keys: tuple[str, str] | None = None


def _as_source(value: FileLike | None, fallback: BodySource) -> BodySource:
    if value is None:
        return fallback
    return value if isinstance(value, bytes) else Path(os.fspath(value))


def _new_task_id() -> str:
    alphabet = string.ascii_letters + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{secrets.token_hex(16)}.jjewelry-aigc-api.{suffix}"


class Hitem3DSimulator:
    def __init__(
        self,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        *,
        token_lifetime_s: float = 86400.0,
        auth_failure_style: Literal["http", "code", "gateway403"] = "http",
        auth_mode: Literal["documented", "bearer", "any"] = "documented",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_s = token_lifetime_s
        self.auth_failure_style: Literal["http", "code", "gateway403"] = auth_failure_style
        # Which schemes the routes take: "documented" (``ROUTE_AUTH`` and the
        # kinds': Token where the pages show it), "bearer" (only Bearer, on
        # every route: what the vendor's client sends everywhere), "any".
        self.auth_mode: Literal["documented", "bearer", "any"] = auth_mode
        # Where each unpublished query path is served (OWN_PATH, GENERIC_ONLY, UNSERVED).
        self.query_routes: dict[str, str] = {name: OWN_PATH for name in UNPUBLISHED_QUERIES}
        # Kinds whose create path is not served at all (404): multicolour's is unpublished.
        self.unserved_creates: set[str] = set()
        self.balance: float = 1000.0
        self.submit_cost: float = 20.0
        self.default_states: tuple[StateEntry, ...] = ("queueing", "processing", "success")
        self.default_glb: FileLike | None = None  # None: minimal_glb_bytes()
        self.reject_auth_on_files = False
        # The limit mode: at most this many tasks running on the account (None: no
        # limit; DOCUMENTED_MAX_RUNNING is the documented default). Each accepted
        # create records how many ran before it; each refusal is counted.
        self.max_running_tasks: int | None = None
        self.running_at_create: list[int] = []
        self.too_many_refusals = 0
        self.file_rate_limit: float | None = None  # bytes/s for /files/ bodies
        self.handler_errors: list[BaseException] = []  # simulator bugs, answered with HTTP 500
        # What a new task of each newer kind brings back (by kind name).
        self.kind_results: dict[str, FileLike] = {
            "split": parts_glb_bytes(), "segmentation": parts_glb_bytes(4),
            "depth": depth_png_bytes(), "multicolor": colour_glb_bytes(),
        }
        # The object storage: how long the upload credentials live (<= 0: issued
        # already expired), and how it words a refusal: JSON as TOS's SDK reads
        # it (tos/exceptions.py), or S3's XML.
        self.upload_credentials_lifetime_s = 3600.0
        self.storage_error_format: Literal["json", "xml"] = "json"
        # The keys the upload credentials may write: only under these prefixes
        # (None: anywhere). ASSUMPTION: nothing says how Hitem3D scopes them; an
        # S3-style store answers a key outside a temporary credential's policy
        # with 403 AccessDenied. The vendor's client writes under "comfyui/".
        self.storage_key_prefixes: tuple[str, ...] | None = None
        self.max_mesh_bytes = MAX_MESH_BYTES
        # Upload limits by kind, lowered by tests (nobody uploads 200 MB in a unit test).
        self.max_source_bytes: dict[str, int] = {name: route.max_source_bytes for name, route in KIND_ROUTES.items()}

        self._lock = threading.RLock()
        self._stopping = threading.Event()  # wakes delays and stalls so stop() is prompt
        self._requests: list[RecordedRequest] = []
        self._submissions: list[Submission] = []
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._tasks: dict[str, _Task] = {}
        self._files: dict[str, _File] = {}  # random hex path segment -> file
        self._upload_credentials: dict[str, tuple[str, str, float]] = {}  # key id -> (secret, token, expiry)
        self._objects: dict[str, bytes] = {}  # the storage: key -> body
        self._storage_server: _Server | None = None
        self._storage_port = 0
        self._storage_thread: threading.Thread | None = None
        self._faults: list[tuple[str, str, FaultKind]] = []
        self._connections: dict[int, socket.socket] = {}
        self._connection_seq = 0
        self._connections_opened = 0
        self._server: _Server | None = None
        self._port = 0  # kept after stop(): a request still in flight may need base_url
        self._thread: threading.Thread | None = None
        # path -> (method, scheme the page shows or None for no token, handler, kind served by it or "")
        self._routes: dict[str, tuple[str, str | None, Callable[[RecordedRequest], _Reply], str]] = {
            f"{API}/auth/token": ("POST", None, self._token, ""),
            f"{API}/query-task": ("GET", ROUTE_AUTH[f"{API}/query-task"], self._query_task, ""),
            f"{API}/submit-task": ("POST", ROUTE_AUTH[f"{API}/submit-task"], self._submit_task, ""),
            f"{API}/balance": ("GET", ROUTE_AUTH[f"{API}/balance"], self._balance, ""),
            f"{API}/upload/token": ("GET", ROUTE_AUTH[f"{API}/upload/token"], self._upload_token, ""),
        }
        for name, route in KIND_ROUTES.items():
            self._routes[route.create] = ("POST", route.create_auth, self._kind_creator(name), name)
            self._routes[route.query] = ("GET", route.query_auth, self._kind_querier(route), name)

    # ---- lifecycle ----

    def start(self, port: int = 0, storage_port: int = 0) -> Hitem3DSimulator:
        """Serve on loopback: the API on ``port``, the object storage on
        ``storage_port`` (0: any free port, as tests want)."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a simulator starts once")
        server = _Server(("127.0.0.1", port), _Handler)
        server.sim = self
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="hitem3d-simulator", daemon=True
        )
        self._thread.start()
        # The storage is a host of its own, as the real one is.
        storage = _Server(("127.0.0.1", storage_port), _Handler)
        storage.sim = self
        storage.storage = True
        self._storage_server = storage
        self._storage_port = int(storage.server_address[1])
        self._storage_thread = threading.Thread(
            target=storage.serve_forever, kwargs={"poll_interval": 0.05}, name="hitem3d-simulator", daemon=True
        )
        self._storage_thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            storage, self._storage_server = self._storage_server, None
            self._stopping.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if storage is not None:
            storage.shutdown()
            storage.server_close()
        # Idle keep-alive connections would otherwise keep their handler threads
        # (and the client's pooled socket) alive after the simulator is gone.
        with self._lock:
            open_sockets = list(self._connections.values())
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in (self._thread, self._storage_thread):
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> Hitem3DSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_url(self) -> str:
        """The object storage's endpoint (``HITEM3D_UPLOAD_ENDPOINT``)."""
        if not self._storage_port:
            raise RuntimeError("simulator not started")
        return f"http://127.0.0.1:{self._storage_port}"

    @property
    def public_base(self) -> str:
        """What a stored object's public link starts with (``HITEM3D_UPLOAD_PUBLIC_BASE``)."""
        return f"{self.base_url}/public/"

    def upload_environment(self) -> dict[str, str]:
        """The two variables that point the add-on's uploads here."""
        return {"HITEM3D_UPLOAD_ENDPOINT": self.storage_url, "HITEM3D_UPLOAD_PUBLIC_BASE": self.public_base}

    # ---- test controls ----

    def issue_token(self) -> str:
        """A valid bearer token without going through /auth/token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime_s
        return token

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def expire_upload_credentials(self) -> None:
        """Every upload credential issued so far is expired."""
        with self._lock:
            self._upload_credentials = {key: (secret, token, 0.0)
                                        for key, (secret, token, _) in self._upload_credentials.items()}

    def expire_urls(self) -> None:
        """Every file URL issued so far answers 403 (the real ones live one hour)."""
        with self._lock:
            for entry in self._files.values():
                entry.expired = True

    def add_task(
        self,
        task_id: str,
        states: Sequence[StateEntry] = ("queueing", "processing", "success"),
        *,
        glb: FileLike | None = None,
        cover: FileLike | None = None,
        extension: str = "glb",
    ) -> str:
        if not states:
            raise ValueError("a task needs at least one state")
        task = _Task(list(states), _as_source(glb, minimal_glb_bytes()), _as_source(cover, TINY_WEBP), extension)
        with self._lock:
            self._tasks[task_id] = task
        return task_id

    def inject(self, path_prefix: str, fault: FaultKind, times: int = 1, *, suffix: str = "") -> None:
        """Queue one-shot faults, consumed in order by the next requests under
        path_prefix (and, with ``suffix``, whose path ends so: ``suffix=".glb"``
        hits the model but not the cover)."""
        with self._lock:
            self._faults.extend([(path_prefix, suffix, fault)] * times)

    def clear_faults(self) -> None:
        """Drop every fault still queued: the outage is over."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    # ---- recording ----

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot, safe to read while handler threads keep appending."""
        with self._lock:
            return list(self._requests)

    @property
    def submissions(self) -> list[Submission]:
        with self._lock:
            return list(self._submissions)

    @property
    def stored(self) -> dict[str, bytes]:
        """The storage's objects, by key."""
        with self._lock:
            return dict(self._objects)

    @property
    def storage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.storage]

    @property
    def connections_opened(self) -> int:
        with self._lock:
            return self._connections_opened

    @property
    def auth_on_files(self) -> list[RecordedRequest]:
        """File downloads that carried an Authorization header (should stay empty)."""
        return [r for r in self.requests if r.path.startswith("/files/") and r.header("Authorization") is not None]

    def count(self, path_prefix: str, method: str | None = None) -> int:
        return sum(
            1 for r in self.requests if r.path.startswith(path_prefix) and (method is None or r.method == method)
        )

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()
            self._connections_opened = 0

    # ---- called by the handler threads ----

    def _register_connection(self, sock: socket.socket) -> int:
        with self._lock:
            self._connection_seq += 1
            self._connections_opened += 1
            self._connections[self._connection_seq] = sock
            return self._connection_seq

    def _unregister_connection(self, connection_id: int) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self, path: str) -> FaultKind | None:
        with self._lock:
            for index, (prefix, suffix, fault) in enumerate(self._faults):
                if path.startswith(prefix) and path.endswith(suffix):
                    del self._faults[index]
                    return fault
        return None

    def _dispatch(self, request: RecordedRequest) -> _Reply:
        if request.storage:
            return self._storage_put(request)
        if request.path.startswith("/files/"):
            return self._serve_file(request)
        if request.path.startswith("/public/"):
            return self._serve_public(request)
        route = self._routes.get(request.path)
        if route is None or not self._served(request.path, route[3]):
            # ASSUMPTION: no page says what an unknown path answers; a web
            # framework's 404 (a bare one is tested with ``inject``).
            return _json_reply({"code": 404, "msg": "Not Found"}, status=404)
        method, scheme, handler, _ = route
        if request.method != method:
            return _json_reply({"code": 405, "msg": "Method Not Allowed"}, status=405)  # ASSUMPTION, as the 404
        if scheme is not None and not self._authorized(request, scheme):
            # The API answers a bad token either way: HTTP 401, or HTTP 200 with code 401 [doc].
            if self.auth_failure_style == "gateway403":
                # Not from Hitem3D's pages: what an API gateway in front of a service
                # may answer to a scheme it does not take (AWS API Gateway's shape),
                # a stand-in for the undocumented, so the client is seen to survive it.
                return _json_reply({"message": "Forbidden"}, 403)
            return _json_reply({"code": 401, "msg": "Unauthorized"}, 401 if self.auth_failure_style == "http" else 200)
        return handler(request)

    def _served(self, path: str, kind: str) -> bool:
        """Whether a kind's route exists in the current modes (an unpublished
        query path may be served elsewhere or nowhere)."""
        if not kind:
            return True
        with self._lock:
            if path == KIND_ROUTES[kind].create:
                return kind not in self.unserved_creates
            return self.query_routes.get(kind, OWN_PATH) == OWN_PATH

    # ---- routes ----

    def _schemes(self, documented: str) -> set[str]:
        if self.auth_mode == "bearer":
            return {BEARER.lower()}
        if self.auth_mode == "any" or documented == ANY:
            return {BEARER.lower(), TOKEN.lower()}
        return {documented.lower()}

    def _authorized(self, request: RecordedRequest, documented: str) -> bool:
        """A live token under a scheme this route takes (a wrong scheme is
        answered like a bad token: 401)."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        with self._lock:
            expiry = self._tokens.get(token.strip())
        return scheme.lower() in self._schemes(documented) and expiry is not None and expiry > time.monotonic()

    def running_tasks(self) -> int:
        """Tasks running on the account now: none of their queries has reported
        success or failure yet (a task moves one state per query of it)."""
        with self._lock:
            return sum(1 for task in self._tasks.values() if _is_running(task))

    def _over_limit(self) -> _Reply | None:
        """The limit mode's refusal of one task too many (caller holds the lock)."""
        running = sum(1 for task in self._tasks.values() if _is_running(task))
        if self.max_running_tasks is not None and running >= self.max_running_tasks:
            self.too_many_refusals += 1
            return _api_error(CODE_TOO_MANY_TASKS, "concurrent task limit reached")
        self.running_at_create.append(running)
        return None

    def _token(self, request: RecordedRequest) -> _Reply:
        scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or (user, password) != (self.client_id, self.client_secret):
            return _api_error(40010000, "client credentials are invalid")  # [doc] get-token
        # [doc] get-token: accessToken, tokenType Bearer, nonce; valid 24 hours.
        data = {"accessToken": self.issue_token(), "tokenType": "Bearer", "nonce": secrets.token_hex(16)}
        # The docs' token example says "message" where every other answer says "msg".
        return _json_reply({"code": 200, "message": "success", "data": data})

    def _upload_token(self, request: RecordedRequest) -> _Reply:
        """Temporary storage credentials; the answer's three names are the ones
        the vendor's client reads (its ``upload_file``)."""
        key_id = "AKLT" + secrets.token_hex(12)
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "STS2" + secrets.token_urlsafe(48)
        with self._lock:
            self._upload_credentials[key_id] = (secret, token, time.monotonic() + self.upload_credentials_lifetime_s)
        return _json_reply({"code": 200, "msg": "success",
                            "data": {"accessKeyId": key_id, "secretAccessKey": secret, "sessionKey": token}})

    # ---- the object storage ----

    def _storage_error(self, status: int, code: str, message: str) -> _Reply:
        request_id = secrets.token_hex(12)
        if self.storage_error_format == "xml":
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                    f"<RequestId>{request_id}</RequestId><HostId>storage</HostId></Error>").encode()
            return _Reply(status, body, {"Content-Type": "application/xml", "x-tos-request-id": request_id})
        body = json.dumps({"Code": code, "Message": message, "RequestId": request_id, "HostId": "storage"}).encode()
        return _Reply(status, body, {"Content-Type": "application/json", "x-tos-request-id": request_id})

    def _storage_put(self, request: RecordedRequest) -> _Reply:
        """PutObject, and only that: the signature checked, then the object kept."""
        if request.method != "PUT":
            return self._storage_error(405, "MethodNotAllowed", "The specified method is not allowed")
        problem = self._tos_signature_problem(request)
        if problem is not None:
            return self._storage_error(*problem)
        key = unquote(request.path[1:])
        if not key:
            return self._storage_error(400, "InvalidObjectName", "The object name is empty")
        allowed = self.storage_key_prefixes
        if allowed is not None and not key.startswith(allowed):
            return self._storage_error(403, "AccessDenied", "Access Denied")
        with self._lock:
            self._objects[key] = request.body
        return _Reply(200, b"", {"ETag": f'"{hashlib.md5(request.body).hexdigest()}"',
                                 "x-tos-request-id": secrets.token_hex(12)})

    def _tos_signature_problem(self, request: RecordedRequest) -> tuple[int, str, str] | None:
        """(status, code, message) when the request's TOS4-HMAC-SHA256
        signature does not hold. Source: Volcengine's SDK, tos/auth.py (what it
        signs) and tos/consts.py (the date format, UNSIGNED-PAYLOAD).
        ASSUMPTION: the error codes are S3's names, which TOS uses."""
        match = _TOS_AUTHORIZATION.fullmatch(request.header("Authorization") or "")
        if match is None:
            return 403, "AccessDenied", "The Authorization header is not a TOS4-HMAC-SHA256 signature"
        key_id, day, region, signed, given = match.groups()
        with self._lock:
            entry = self._upload_credentials.get(key_id)
        if entry is None:
            return 403, "InvalidAccessKeyId", "The access key ID you provided does not exist"
        secret, token, expiry = entry
        if request.header("x-tos-security-token") != token:
            return 403, "InvalidSecurityToken", "The security token included in the request is invalid"
        if expiry <= time.monotonic():
            return 403, "ExpiredToken", "The provided token has expired"
        date = request.header("x-tos-date") or ""
        try:
            sent_at = datetime.strptime(date, STORAGE_DATE_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return 403, "AccessDenied", "The x-tos-date header is missing or malformed"
        if abs((datetime.now(timezone.utc) - sent_at).total_seconds()) > STORAGE_MAX_SKEW_S:
            return 403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large"
        if day != date[:8] or region != STORAGE_REGION:
            return 400, "AuthorizationHeaderMalformed", f"The credential scope {day}/{region} is wrong for this request"
        names = signed.split(";")
        present = {name.lower() for name in request.headers}
        must = {"host", "x-tos-date"} | {name for name in present if name.startswith("x-tos-")}
        must |= {"content-type"} & present
        if names != sorted(set(names)) or must - set(names):
            return 403, "AccessDenied", f"SignedHeaders must list {';'.join(sorted(must))}, sorted"
        payload = request.header("x-tos-content-sha256") or "UNSIGNED-PAYLOAD"
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(request.body).hexdigest():
            return 400, "BadDigest", "The x-tos-content-sha256 you specified did not match what we received"
        query = "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
                         for name, value in sorted(request.query.items()))
        canonical = "\n".join([request.method, quote(unquote(request.path), safe="/~"), query,
                               "".join(f"{name}:{request.header(name)}\n" for name in names), signed, payload])
        scope = f"{day}/{region}/tos/request"
        to_sign = "\n".join(["TOS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signing = secret.encode()
        for part in (day, region, "tos", "request"):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided"
        return None

    def _serve_public(self, request: RecordedRequest) -> _Reply:
        """The public base: a stored object, as Hitem3D would fetch it."""
        with self._lock:
            body = self._objects.get(unquote(request.path[len("/public/"):]))
        if body is None:
            return _Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        return _Reply(200, body, {"Content-Type": "model/gltf-binary"})

    def _mesh_url_problem(self, url: str) -> tuple[int, str] | None:
        """A mesh to texture must be a file Hitem3D has: one of its own results
        ([doc], an older zh page: "a geometry-model URL returned by Hitem3D") or
        an object uploaded to its storage ([vendor], the link its client sends).
        ASSUMPTION: the codes for a link that is neither are undocumented."""
        parts = urlsplit(url)
        if url.startswith(f"{self.base_url}/files/"):
            segments = parts.path.split("/")
            entry = self._files.get(segments[2]) if len(segments) > 2 else None
            auth_key = dict(parse_qsl(parts.query)).get("auth_key")
            if entry is None or entry.expired or auth_key != entry.auth_key:
                return 10000000, "system error: mesh_url cannot be read"
            return None
        if not url.startswith(self.public_base):
            return 10000000, "system error: mesh_url is not a file Hitem3D stores"
        body = self._objects.get(unquote(url[len(self.public_base):]))
        if body is None:
            return 10000000, "system error: mesh_url cannot be read"
        if not body:
            return 10031010, "empty file not allowed"
        if len(body) > self.max_mesh_bytes:
            return 10031001, "Upload file size exceeds limit"
        if body[:4] != b"glTF":
            return 10031004, "mesh only allow glb"
        return None

    def _balance(self, request: RecordedRequest) -> _Reply:
        with self._lock:
            balance = float(self.balance)
        # [doc] query-balance: data.totalBalance, a decimal number of credits.
        return _json_reply({"code": 200, "msg": "success", "data": {"totalBalance": balance}})

    def _query_task(self, request: RecordedRequest, route: KindRoute | None = None) -> _Reply:
        """query-task of image-to-3D (``route`` None) or of a newer kind: each
        endpoint knows only the tasks of its own kind."""
        task_id = request.query.get("task_id", "")
        with self._lock:
            task = self._tasks.get(task_id)
            owner = _route_of(task_id)
            if task is not None and owner is not route and not (route is None and self._generic_knows(owner)):
                task = None  # asked at another kind's endpoint
            if task is None:
                # ASSUMPTION: the answer for an unknown task ID is undocumented; this code is ours.
                return _api_error(40040000, "task not exist")
            entry = task.states[min(task.queries, len(task.states) - 1)]
            task.queries += 1
            if isinstance(entry, Mapping) and "code" in entry:
                # A whole replacement answer, e.g. 50010001 "generate failed" ([community]).
                return _json_reply(dict(entry))
            # [doc] query-task: data.state is one of the five states; on success
            # data.url (model) and data.cover_url (WebP), both one hour, and
            # data.id = <task_id>_0. ``progress`` is undocumented: a test adds it.
            overrides = dict(entry) if isinstance(entry, Mapping) else {"state": entry}
            data: dict[str, Any] = {"task_id": task_id, "state": overrides.get("state", "")}
            if str(data["state"]).lower() == "success":
                model_url, cover_url = self._current_urls(task)
                data.update(id=f"{task_id}_0", url=model_url)
                if route is None or route.has_cover:
                    data["cover_url"] = cover_url
            data.update(overrides)  # last, so a test can override or null any field
        return _json_reply({"code": 200, "msg": "success", "data": data})

    def _generic_knows(self, route: KindRoute | None) -> bool:
        """Whether /query-task answers for a kind's tasks: only when its own
        query path is served there (``GENERIC_ONLY``)."""
        name = next((name for name, candidate in KIND_ROUTES.items() if candidate is route), "")
        return self.query_routes.get(name, OWN_PATH) == GENERIC_ONLY

    def _current_urls(self, task: _Task) -> tuple[str, str]:
        """The task's signed URLs, minted afresh once expire_urls() killed the old ones."""
        if task.urls is None or task.file_keys is None or self._files[task.file_keys[0]].expired:
            model_key, model_url = self._mint_url(
                task.glb, "application/octet-stream", f"target//original/0.{task.extension}"
            )
            cover_key, cover_url = self._mint_url(task.cover, "image/webp", "target/cover/webp/0.webp")
            task.urls, task.file_keys = (model_url, cover_url), (model_key, cover_key)
        return task.urls

    def _mint_url(self, source: BodySource, content_type: str, tail: str) -> tuple[str, str]:
        key = secrets.token_hex(16)
        # CDN "type A" signature shape: expiry-rand-uid-hash.
        auth_key = f"{int(time.time()) + 3600}-{secrets.token_hex(4)}-0-{secrets.token_hex(16)}"
        self._files[key] = _File(source, content_type, auth_key)
        return key, f"{self.base_url}/files/{key}/{tail}?auth_key={auth_key}"

    def _serve_file(self, request: RecordedRequest) -> _Reply:
        if request.method not in ("GET", "HEAD"):
            return _Reply(405)
        if self.reject_auth_on_files and request.header("Authorization") is not None:
            # Signed object-store URLs refuse a second authentication mechanism.
            body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
            return _Reply(400, body, {"Content-Type": "application/xml"})
        segments = request.path.split("/")
        with self._lock:
            entry = self._files.get(segments[2]) if len(segments) > 2 else None
        if entry is None:
            return _Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        if isinstance(entry.source, Path) and not entry.source.is_file():
            raise FileNotFoundError(entry.source)  # a test bug: lands in handler_errors
        if entry.expired or request.query.get("auth_key") != entry.auth_key:
            return _Reply(403, b"Forbidden", {"Content-Type": "text/plain"})
        return _Reply(200, entry.source, {"Content-Type": entry.content_type}, throttle=True)

    def _kind_querier(self, route: KindRoute) -> Callable[[RecordedRequest], _Reply]:
        return lambda request: self._query_task(request, route)

    def _kind_creator(self, name: str) -> Callable[[RecordedRequest], _Reply]:
        return lambda request: self._create_kind_task(request, name)

    def _create_kind_task(self, request: RecordedRequest, name: str) -> _Reply:
        route = KIND_ROUTES[name]
        try:
            fields, files = _parse_multipart(request.body, request.header("Content-Type") or "")
        except ValueError as exc:
            return _api_error(10000000, f"system error: {exc}")
        with self._lock:
            max_bytes = self.max_source_bytes[name]
        error = _validate_kind(route, fields, files, max_bytes)
        if error is not None:
            return _api_error(*error)
        bad_mesh = any(f[0] == route.source_field and BAD_MESH_MARK in f[3][:64] for f in files)
        with self._lock:
            if self.balance < route.cost:
                return _api_error(30010000, "balance is not enough")  # [community], with HTTP 200
            refusal = self._over_limit()
            if refusal is not None:
                return refusal
            task_id = f"{route.prefix}{secrets.token_hex(16)}"
            states: list[StateEntry] = list(self.default_states)
            if bad_mesh:
                # The service takes the upload, fails on it, and refunds.
                states = ["queueing", {"code": CODE_GENERATE_FAILED_KINDS, "msg": "generate failed", "data": {}}]
            else:
                self.balance -= route.cost
            result = _as_source(self.kind_results[name], minimal_glb_bytes())
            extension = route.formats[fields.get("format", "1")]
            self._tasks[task_id] = _Task(states, result, TINY_WEBP, extension)
            self._submissions.append(Submission(fields, files, task_id, request.path))
        return _json_reply({"code": 200, "msg": "success", "data": {"task_id": task_id}})

    def _submit_task(self, request: RecordedRequest) -> _Reply:
        try:
            fields, files = _parse_multipart(request.body, request.header("Content-Type") or "")
        except ValueError as exc:
            return _api_error(10000000, f"system error: {exc}")
        error = _validate_submission(fields, files)
        if error is not None:
            return _api_error(*error)
        with self._lock:
            if fields.get("request_type") == "2":
                error = self._mesh_url_problem(fields.get("mesh_url", ""))
                if error is not None:
                    return _api_error(*error)
            if self.balance < self.submit_cost:
                return _api_error(30010000, "balance is not enough")  # [community], with HTTP 200
            refusal = self._over_limit()
            if refusal is not None:
                return refusal
            self.balance -= self.submit_cost
            task_id = _new_task_id()
            glb = _as_source(self.default_glb, minimal_glb_bytes())
            extension = FORMAT_EXTENSIONS[fields.get("format", "1")]  # the server defaults to obj [vendor, community]
            self._tasks[task_id] = _Task(list(self.default_states), glb, TINY_WEBP, extension)
            self._submissions.append(Submission(fields, files, task_id))
        return _json_reply({"code": 200, "msg": "success", "data": {"task_id": task_id}})  # [doc] submit-task


def _check_uploads(uploads: list[tuple[str, str, str, bytes]], extensions: frozenset[str], max_bytes: int,
                   wrong_type: tuple[int, str]) -> tuple[int, str] | None:
    """The checks every uploaded file gets: its type (by extension), empty, too large."""
    for _, filename, _, data in uploads:
        extension = filename.rpartition(".")[2].lower() if "." in filename else ""
        if extension not in extensions:
            return wrong_type
        if not data:
            return 10031010, "empty file not allowed"
        if len(data) > max_bytes:
            return 10031001, "Upload file size exceeds limit"
    return None


def _is_running(task: _Task) -> bool:
    """Running until a query has reported its end: the client and the account
    see the slot free at the same moment."""
    entry = task.states[min(max(task.queries - 1, 0), len(task.states) - 1)]
    if isinstance(entry, Mapping):
        if "code" in entry:
            return False  # a whole replacement answer: a failure
        entry = str(entry.get("state", ""))
    return entry.lower() in _RUNNING_STATES


def _route_of(task_id: str) -> KindRoute | None:
    return next((route for route in KIND_ROUTES.values() if task_id.startswith(route.prefix)), None)


def _validate_kind(route: KindRoute, fields: dict[str, str], files: list[tuple[str, str, str, bytes]],
                   max_bytes: int) -> tuple[int, str] | None:
    """The checks of a newer kind's create request; returns (code, msg) of the first failure.
    ASSUMPTION: the pages document no codes of their own; these reuse submit-task's."""
    sources = [f for f in files if f[0] == route.source_field]
    link = fields.get(route.url_field, "")
    if not sources and not link:
        if route.source_field == "image":
            return 10031008, "images or multi images required"
        return 10031011, "mesh url required"
    if sources and link:
        return 10000000, f"system error: both {route.source_field} and {route.url_field} provided"
    if link and not link.startswith("http"):
        return 10031012, f"{route.url_field} must start with http"
    wrong_type = ((10031005, "images only allow png jpeg jpg webp") if route.source_field == "image"
                  else (10031004, "format not support"))
    error = _check_uploads(sources, route.source_extensions, max_bytes, wrong_type)
    if error is not None:
        return error
    for name, allowed in route.choices.items():
        if name in fields and fields[name] not in allowed:
            return 10000000, f"system error: {name} not valid"
    for name, (low, high) in route.numbers.items():
        if name in fields:
            try:
                value = float(fields[name])
            except ValueError:
                return 10000000, f"system error: {name} not valid"
            if not low <= value <= high:
                return 10000000, f"system error: {name} out of range"
    # Required fields [doc]. ASSUMPTION: the answer to a missing one is not
    # documented (the FAQ says parameter-validation failures cost nothing):
    # refused at once, nothing charged, with the system-error code.
    model = fields.get("model", route.default_model)
    for needed in (*route.required, *route.required_by_model.get(model, ())):
        if needed not in fields:
            return 10000000, f"system error: {needed} required"
    if fields.get("format", "1") not in route.formats:
        return 10031004, "format not support"
    if route.default_model and model == "character" and fields.get("format", "1") != "2":
        return 10031004, "format not support: a character split gives glb (2) only"  # [doc]
    return None


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """Split multipart/form-data by hand (binary-safe); part headers go through the email parser."""
    outer = HeaderParser(policy=HTTP).parsestr(f"Content-Type: {content_type}\r\n\r\n")
    if outer.get_content_type() == "application/x-www-form-urlencoded":
        # What a client sends when it has no file to attach (then 10031008 follows).
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), []
    boundary = outer.get_param("boundary")
    if outer.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise ValueError("multipart body is not terminated")
    fields: dict[str, str] = {}
    files: list[tuple[str, str, str, bytes]] = []
    for section in sections[1:-1]:
        _, _, rest = section.partition(b"\r\n")  # drop transport padding after the delimiter
        head, sep, content = rest.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("malformed multipart part")
        part = HeaderParser(policy=HTTP).parsestr(head.decode("utf-8", "replace") + "\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("multipart part without a name")
        name = collapse_rfc2231_value(name)
        filename = part.get_filename()
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            part_type = part.get_content_type() if "Content-Type" in part else "application/octet-stream"
            files.append((name, filename, part_type, content))
    return fields, files


def _validate_submission(fields: dict[str, str], files: list[tuple[str, str, str, bytes]]) -> tuple[int, str] | None:
    """The documented submit-task checks; returns (code, msg) of the first failure."""
    request_type = fields.get("request_type", "3")  # 3 when not sent [doc]
    if request_type not in ("1", "2", "3"):
        # ASSUMPTION: no code is documented for a bad request_type.
        return 10000000, "system error: request_type must be 1, 2 or 3"
    model = fields.get("model", "")
    if model not in MODEL_RESOLUTIONS:
        return 10031006, f"model {model} not support"
    images = [f for f in files if f[0] == "images"]
    multi = [f for f in files if f[0] == "multi_images"]
    if images and multi:
        return 10031007, "both images and multi images provided"
    if not images and not multi:
        return 10031008, "images or multi images required"
    if len(images) > 1:
        # ASSUMPTION: `images` holds one file; the code for more is undocumented.
        return 10000000, "system error: images accepts a single file"
    if len(multi) > 4:
        return 10031009, "multi images count exceeds limit"
    error = _check_uploads(images + multi, IMAGE_EXTENSIONS, MAX_IMAGE_BYTES,
                           (10031005, "images only allow png jpeg jpg webp"))
    if error is not None:
        return error
    if multi:
        bits = fields.get("multi_images_bit", "")
        # ASSUMPTION: the codes for a malformed bit mask are undocumented.
        if len(bits) != 4 or set(bits) - {"0", "1"} or bits[0] != "1":
            return 10000000, "system error: multi_images_bit must be 4 characters of 0/1 with the front view set"
        if bits.count("1") != len(multi):
            return 10031009, "multi images count does not match multi_images_bit"
    if fields.get("resolution", "1024") not in MODEL_RESOLUTIONS[model]:  # 1024 when not sent [doc]
        return 10031003, "Resolution not valid"
    if "face" in fields:  # optional: the server picks a default
        face = fields["face"]
        max_face = MAX_FACE_BY_MODEL.get(model, MAX_FACE)
        if not face.isdigit() or not MIN_FACE <= int(face) <= max_face:
            return 10031002, "Face not valid"
    if fields.get("format", "1") not in FORMAT_EXTENSIONS:
        return 10031004, "format not support"
    if fields.get("pbr", "1") not in ("0", "1"):
        return 10000000, "system error: pbr must be 0 or 1"  # ASSUMPTION: undocumented code
    if "shading" in fields:
        try:
            shading = float(fields["shading"])
        except ValueError:
            shading = -1.0
        if not 0.0 <= shading <= 1.0:
            return 10000000, "system error: shading must be 0 to 1"  # ASSUMPTION: undocumented code
    if request_type == "2":
        # No page has a file part for the mesh (only [community] clients send
        # one): a `mesh` part is ignored, the link is what counts.
        mesh_url = fields.get("mesh_url", "")
        if not mesh_url:
            return 10031011, "mesh url required when request type 2"
        if mesh_url and not mesh_url.startswith("http"):
            return 10031012, "mesh_url must start with http"
        if model not in TEXTURE_MESH_MODELS:
            # ASSUMPTION: the code for a model that cannot texture a mesh is undocumented.
            return 10000000, f"system error: {model} does not support request type 2"
    return None


# ---- HTTP plumbing --------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must never keep the test process alive
    sim: Hitem3DSimulator
    storage = False  # the object storage's host, not the API's

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-body all the time in fault tests: stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so tests can count connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.sim = self.server.sim
        self.connection_id = self.sim._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.sim._unregister_connection(self.connection_id)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        sim = self.sim
        url = urlsplit(self.path)
        fault = sim._take_fault(url.path)
        try:
            if isinstance(fault, CutRequest):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(fault.after_bytes, length)) if length > 0 else b""
            else:
                body = self._read_body()
        except ValueError:
            self.send_error(400)
            return
        request = RecordedRequest(
            self.command,
            url.path,
            dict(parse_qsl(url.query, keep_blank_values=True)),
            dict(self.headers.items()),
            body,
            self.connection_id,
            time.time(),
            self.server.storage,
        )
        sim._record(request)
        if isinstance(fault, CutRequest):
            self.close_connection = True
            self._reset()
            return
        if isinstance(fault, Canned):
            reply = _Reply(fault.status, fault.body, dict(fault.headers))
        else:
            if isinstance(fault, Delay):
                sim._stopping.wait(fault.seconds)
            try:
                reply = sim._dispatch(request)
            except Exception as exc:  # a simulator bug: surface it to the test, not stderr
                with sim._lock:
                    sim.handler_errors.append(exc)
                reply = _json_reply({"code": 10000000, "msg": f"system error: {exc!r}"}, status=500)
        try:
            self._deliver(reply, fault if isinstance(fault, (Truncate, Reset, Stall, AnnounceLength)) else None)
        except OSError:  # the client went away
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _deliver(self, reply: _Reply, fault: BodyFault | None) -> None:
        length = reply.length()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        announced = fault.content_length if isinstance(fault, AnnounceLength) else length
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = None
        if isinstance(fault, Truncate):
            limit = fault.n_bytes
        elif isinstance(fault, (Reset, Stall)):
            limit = fault.after_bytes
        self._write_body(reply.body, limit, self.sim.file_rate_limit if reply.throttle else None)
        if fault is None:
            return
        self.close_connection = True  # the body is now out of step with its headers
        if isinstance(fault, Stall):
            self.sim._stopping.wait(fault.seconds)
        elif isinstance(fault, Reset):
            self._reset()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        # rfile holds a reference to the socket: close it too, or close() is deferred.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()

    def _write_body(self, source: BodySource, limit: int | None, rate: float | None) -> None:
        chunk_size = 64 * 1024 if rate is None else max(1, min(64 * 1024, int(rate / 20)))
        started, sent = time.monotonic(), 0
        for chunk in _chunks(source, chunk_size):
            if limit is not None:
                chunk = chunk[: max(0, limit - sent)]
                if not chunk:
                    break
            self.wfile.write(chunk)
            sent += len(chunk)
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0 and self.sim._stopping.wait(ahead):
                    break


def _chunks(source: BodySource, size: int) -> Iterator[bytes]:
    if isinstance(source, bytes):
        view = memoryview(source)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    with source.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk
