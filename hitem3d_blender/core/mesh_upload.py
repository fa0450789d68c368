"""An artist's own mesh, uploaded to Hitem3D's object storage for texturing.

Hitem3D textures a mesh it can fetch from a link (``mesh_url``). The vendor's
own client (``dev-hitem/hitem3d-comfyUI``, ``api/utils.py``) gets there so:
``GET /open-api/v1/upload/token`` answers temporary credentials for Volcengine
TOS object storage; the file goes up with a PutObject to bucket
``mm-sparc3d-prod`` in region ``ap-southeast-1`` under a key of the client's
own (``<prefix>/mesh/<date>/<uuid>.glb``); the link sent is Hitem3D's public
base followed by that key. We do the same, signed by ``tos_signing`` exactly
as that SDK signs a PutObject: ``x-tos-content-sha256: UNSIGNED-PAYLOAD`` (its
default), so any storage that takes the vendor's uploads takes ours (TLS
guards the body on the way; Content-Length its size). Which keys the temporary credentials may write is said nowhere:
on AccessDenied the upload is tried once under the vendor's own layout
(``comfyui/mesh/...``), and the prefix that worked is kept for the session.

Where it goes is data (``StorageTarget``); for tests two environment
variables override it: ``HITEM3D_UPLOAD_ENDPOINT`` (the URL an object is PUT
under, its key appended as the path) and ``HITEM3D_UPLOAD_PUBLIC_BASE`` (what
``mesh_url`` starts with).

No ``bpy``. ``upload_mesh`` runs on a worker: it reads the file as it sends
it, never whole into memory.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Protocol
from urllib.parse import quote, urlsplit

import requests

from . import tos_signing
from .cancel import current_token
from .errors import Cancelled, Hitem3DError, NetworkError
from .logs import clean_text
from .mesh_files import megabytes
from .messages import Message, msg
from .network import failure_error
from .settings import ApiSettings, _is_loopback
from .tos_signing import StorageCredentials

log = logging.getLogger(__name__)

ENV_ENDPOINT = "HITEM3D_UPLOAD_ENDPOINT"
ENV_PUBLIC_BASE = "HITEM3D_UPLOAD_PUBLIC_BASE"
CONTENT_TYPE = "model/gltf-binary"
CHUNK_BYTES = 1024 * 1024
# An error answer is a few hundred bytes; more is not one.
MAX_ERROR_BYTES = 64 * 1024
# Storage answers that mean "these temporary credentials are no longer good":
# fetched anew once, then the upload is tried once more (nothing is spent by
# an upload). Codes as S3-style stores name them; TOS follows S3's names.
_EXPIRED_CODES = frozenset({"ExpiredToken", "TokenExpired", "InvalidSecurityToken", "InvalidToken",
                            "ExpiredSecurityToken"})
_CLOCK_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
# "Not allowed here": what S3-style stores (TOS among them) answer when the
# credentials' policy does not cover the key. The temporary credentials may
# allow only the vendor's own folder (nothing says which): the upload is tried
# once more under the vendor's key layout (``VENDOR_KEY_PREFIX``).
_DENIED_CODES = frozenset({"AccessDenied"})
# The vendor's client names its uploads ``comfyui/mesh/<date>/<uuid>.<ext>``
# (dev-hitem/hitem3d-comfyUI, api/utils.py, ``upload_file``).
VENDOR_KEY_PREFIX = "comfyui"


@dataclass(frozen=True)
class StorageTarget:
    """Where an upload goes and how Hitem3D reads it back."""

    endpoint: str  # an object is PUT at endpoint + "/" + key
    region: str  # of the signature's scope
    bucket: str  # named in what we tell the artist (the endpoint's host holds it)
    public_base: str  # mesh_url = public_base + key
    key_prefix: str  # our own folder in the bucket

    @property
    def host(self) -> str:
        """The Host header: the endpoint's host (and port), as it is sent and signed."""
        return urlsplit(self.endpoint).netloc.lower()

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_base).netloc.lower()

    def path_of(self, key: str) -> str:
        return urlsplit(self.endpoint).path.rstrip("/") + "/" + key

    def url_of(self, key: str) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}{tos_signing.canonical_uri(self.path_of(key))}"

    def public_url(self, key: str) -> str:
        return self.public_base + key


# The vendor's client: endpoint tos-ap-southeast-1.volces.com, bucket
# mm-sparc3d-prod (virtual-hosted: the bucket is the host's first label),
# region ap-southeast-1, public base https://hitem3dstatic.zaohaowu.net/.
HITEM3D_STORAGE = StorageTarget(
    endpoint="https://mm-sparc3d-prod.tos-ap-southeast-1.volces.com",
    region="ap-southeast-1",
    bucket="mm-sparc3d-prod",
    public_base="https://hitem3dstatic.zaohaowu.net/",
    key_prefix="hitem3d-blender",
)


class UploadFailed(Hitem3DError):
    """The mesh did not reach the storage: nothing was sent to Hitem3D, nothing spent."""

    retryable = True


class InvalidUploadTarget(Hitem3DError):
    """An override of the storage's address that cannot be used: nothing was sent."""


def _checked_url(variable: str, value: str) -> str:
    """An https address (http only to this computer), without a password."""
    parts = urlsplit(value)
    try:
        _ = parts.port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidUploadTarget(msg("{variable} must be an https:// address: check the environment variable",
                                      variable=variable))
    if parts.username is not None or parts.password is not None:
        # NOTE: the message never quotes the value: it holds a password.
        raise InvalidUploadTarget(msg("{variable} must not contain a user name or password", variable=variable))
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidUploadTarget(msg("{variable} must use https:// (http:// only for this computer)",
                                      variable=variable))
    return value


# Hosts of Hitem3D's own API: its pages use api.hitem3d.ai and, in examples,
# api.hitem3d.com. Any other API (the sandbox, a test server) never gets an
# artist's mesh uploaded to Hitem3D's real storage by default.
HITEM3D_API_DOMAINS = ("hitem3d.ai", "hitem3d.com")


def is_hitem3d_api(api_base_url: str) -> bool:
    host = (urlsplit(api_base_url).hostname or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in HITEM3D_API_DOMAINS)


def target_from_env(environ: Mapping[str, str] | None = None, *, api_base_url: str | None = None) -> StorageTarget:
    """Hitem3D's storage, or where the two environment variables point.
    Raises ``InvalidUploadTarget``: nothing is sent to an address we cannot
    trust, and with ``api_base_url`` not Hitem3D's own (the sandbox, say) the
    storage must be named too, so a mesh never goes to Hitem3D's storage for
    a service that is not Hitem3D."""
    env = os.environ if environ is None else environ
    endpoint = env.get(ENV_ENDPOINT, "").strip()
    public_base = env.get(ENV_PUBLIC_BASE, "").strip()
    if api_base_url is not None and not endpoint and not is_hitem3d_api(api_base_url):
        raise InvalidUploadTarget(msg("The API base URL is not Hitem3D's ({host}): set {variable} to its storage, "
                                      "so your mesh is not uploaded to Hitem3D's",
                                      host=urlsplit(api_base_url).netloc, variable=ENV_ENDPOINT))
    target = HITEM3D_STORAGE
    if endpoint:
        target = _replace(target, endpoint=_checked_url(ENV_ENDPOINT, endpoint).rstrip("/"))
    if public_base:
        checked = _checked_url(ENV_PUBLIC_BASE, public_base)
        target = _replace(target, public_base=checked if checked.endswith("/") else checked + "/")
    return target


def _replace(target: StorageTarget, **changes: str) -> StorageTarget:
    values = {"endpoint": target.endpoint, "region": target.region, "bucket": target.bucket,
              "public_base": target.public_base, "key_prefix": target.key_prefix}
    values.update(changes)
    return StorageTarget(**values)


def object_key(target: StorageTarget, when: datetime, unique: str, prefix: str = "") -> str:
    """``<prefix>/mesh/<yyyy-mm-dd>/<uuid>.glb``, as the vendor's client names its
    uploads; ``prefix`` is the target's own unless given."""
    return f"{prefix or target.key_prefix}/mesh/{when.astimezone(timezone.utc):%Y-%m-%d}/{unique}.glb"


def key_prefixes(target: StorageTarget, remembered: str = "") -> list[str]:
    """The key prefixes an upload tries, in order: the one that worked before
    in this session (``remembered``), else ours; then the other of ours and
    the vendor's."""
    return list(dict.fromkeys([remembered or target.key_prefix, target.key_prefix, VENDOR_KEY_PREFIX]))


def destination(target: StorageTarget) -> Message:
    """Where a mesh to texture goes, said beside the button before it is sent."""
    return msg("Uploads the selected meshes as one GLB, without their names, to Hitem3D's storage ({host}); "
               "Hitem3D reads it from {public}", host=target.host, public=target.public_host)


def uploading(name: str, size: int, target: StorageTarget) -> Message:
    """The command line's line before an upload: what, how big, where."""
    return msg("Uploading {name} ({size}, without its object names) to Hitem3D's storage ({host}); "
               "Hitem3D reads it from {public}", name=name, size=megabytes(size), host=target.host,
               public=target.public_host)


# -- the body -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadBody:
    """What is uploaded: ``head`` (bytes made here), then ``length`` bytes of
    ``path`` from ``offset``. A plain file is ``UploadBody(b"", path, 0, size)``."""

    head: bytes
    path: Path
    offset: int
    length: int

    @property
    def size(self) -> int:
        return len(self.head) + self.length

    def chunks(self) -> Iterator[bytes]:
        """The body, a chunk at a time; the running job's Cancel stops it."""
        token = current_token()
        if self.head:
            yield self.head
        left = self.length
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            while left > 0:
                if token is not None and token.cancelled:
                    raise Cancelled()
                chunk = stream.read(min(CHUNK_BYTES, left))
                if not chunk:
                    # The file shrank since it was measured: what follows is not what was signed.
                    raise OSError(f"{self.path.name} changed while it was uploaded")
                left -= len(chunk)
                yield chunk


class _Stream:
    """A body ``requests`` sends with a Content-Length and without reading it whole."""

    def __init__(self, body: UploadBody) -> None:
        self._body = body

    def __len__(self) -> int:
        return self._body.size

    def __iter__(self) -> Iterator[bytes]:
        return self._body.chunks()


# -- the storage's answers ------------------------------------------------------------------------


_XML_CODE = re.compile(r"<Code>([^<]{1,200})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,2000})</Message>")


def error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of a storage error answer: TOS's JSON
    (``{"Code": ..., "Message": ...}``, what its SDK reads) or S3's XML."""
    text = body[:MAX_ERROR_BYTES].decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code, message = data.get("Code"), data.get("Message")
        return (clean_text(code, 80) if isinstance(code, str) else "",
                clean_text(message) if isinstance(message, str) else "")
    code_match, message_match = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    return (clean_text(html.unescape(code_match.group(1)), 80) if code_match else "",
            clean_text(html.unescape(message_match.group(1))) if message_match else "")


def _read_error(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(16 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BYTES:
                break
    except requests.RequestException:
        pass  # the status says enough
    return b"".join(chunks)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def _reason(status: int, code: str, message: str) -> str:
    return f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")


def refused_message(status: int, code: str, message: str) -> Message:
    if code in _CLOCK_CODES:
        return msg("Hitem3D's storage refused the mesh because this computer's clock is off: set the date and "
                   "time automatically, then try again (nothing was spent)")
    return msg("Hitem3D's storage refused the mesh ({reason}): nothing was spent; try again in a few minutes",
               reason=_reason(status, code, message))


# -- the upload -----------------------------------------------------------------------------------


class UploadClient(Protocol):
    """What an upload needs of ``api.Hitem3DClient``."""

    settings: ApiSettings
    # The key prefix an upload worked under this session ('' before the first).
    upload_key_prefix: str

    @property
    def downloads(self) -> requests.Session: ...

    def upload_credentials(self) -> StorageCredentials: ...


@dataclass(frozen=True)
class Uploaded:
    key: str
    url: str  # the mesh_url to send
    size: int


def put_object(session: requests.Session, target: StorageTarget, credentials: StorageCredentials, key: str,
               body: UploadBody, *, timeout_s: float, when: datetime) -> None:
    """One signed PutObject. Raises ``_Refused`` for the storage's no,
    ``requests.RequestException`` when the connection fails."""
    headers = {
        "Host": target.host,
        "Content-Type": CONTENT_TYPE,
        # What Volcengine's SDK sends unless given a hash (clientv2's _req):
        # signed as a header and as the canonical request's payload line.
        tos_signing.CONTENT_SHA256: tos_signing.UNSIGNED_PAYLOAD,
    }
    signed = tos_signing.sign("PUT", target.path_of(key), {}, headers, credentials, target.region, when)
    token = current_token()
    # NOTE: no redirects: a PUT that is sent on would carry the signature elsewhere.
    response = session.put(target.url_of(key), data=_Stream(body), headers=signed, timeout=timeout_s,
                           allow_redirects=False, stream=True)
    if token is not None:
        token.track(response)
    try:
        with response:
            if 200 <= response.status_code < 300:
                return
            code, message = error_of(_read_error(response))
            raise _Refused(response.status_code, code, message)
    finally:
        if token is not None:
            token.untrack(response)


def upload_mesh(client: UploadClient, body: UploadBody, *, target: StorageTarget,
                now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                unique: Callable[[], str] = lambda: str(uuid.uuid4())) -> Uploaded:
    """Upload ``body`` to the storage; returns its key and the ``mesh_url``
    Hitem3D reads it from. Raises ``UploadFailed`` (or ``Cancelled``), with
    nothing sent to Hitem3D. A refused or expired temporary credential is
    asked for anew once; a key the credentials may not write (AccessDenied)
    is tried once under the vendor's key layout, and the layout that worked
    is kept on ``client`` for the session. At most four PUTs."""
    prefixes = key_prefixes(target, client.upload_key_prefix)
    unique_name, day = unique(), now()
    credentials = _credentials(client)
    renewed, index, denied = False, 0, []
    while True:
        key = object_key(target, day, unique_name, prefixes[index])
        try:
            put_object(client.downloads, target, credentials, key, body,
                       timeout_s=client.settings.request_timeout_s, when=now())
            log.info("Uploaded %d bytes to %s as %s", body.size, target.host, key)
            client.upload_key_prefix = prefixes[index]
            return Uploaded(key, target.public_url(key), body.size)
        except _Refused as exc:
            log.warning("The storage refused the upload under %s/: HTTP %d %s", prefixes[index], exc.status,
                        exc.code)
            if not renewed and (exc.code in _EXPIRED_CODES or exc.status == 401):
                credentials, renewed = _credentials(client), True
                continue
            if exc.code in _DENIED_CODES or (exc.status == 403 and not exc.code):
                denied.append(f"{prefixes[index]}/")
                if index + 1 < len(prefixes):
                    index += 1
                    continue
                if len(denied) > 1:
                    raise UploadFailed(msg("Hitem3D's storage did not let its upload credentials store the mesh "
                                           "under {keys} ({reason}): nothing was spent; update the extension, or "
                                           "report it", keys=", ".join(denied),
                                           reason=_reason(exc.status, exc.code, exc.message))) from None
            raise UploadFailed(refused_message(exc.status, exc.code, exc.message)) from None
        except OSError as exc:
            if isinstance(exc, requests.RequestException):
                token = current_token()
                if token is not None and token.cancelled:
                    raise Cancelled() from None
                raise UploadFailed(msg("Uploading the mesh failed, nothing was spent: {reason}",
                                       reason=failure_error(exc, target.host).message)) from None
            raise UploadFailed(msg("Mesh: cannot read {name}: {reason}", name=body.path.name,
                                   reason=exc.strerror or str(exc))) from None


def _credentials(client: UploadClient) -> StorageCredentials:
    try:
        return client.upload_credentials()
    except (Cancelled, NetworkError):
        raise
    except Hitem3DError as exc:
        raise UploadFailed(msg("Hitem3D gave no permission to upload the mesh ({reason}): nothing was spent; "
                               "try again in a few minutes", reason=exc.message)) from None
