"""Streaming result files to disk without ever leaving half a file behind.

The file is written under a temporary name in the destination folder, its length
and format are checked, and only then is it renamed into place (an atomic
``os.replace`` on the same file system).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote, urlsplit

import requests

from .api import USER_AGENT, network_error
from .errors import BadResultFile, Cancelled, ExpiredUrl, NetworkError

CHUNK_SIZE = 256 * 1024
DEFAULT_MAX_BYTES = 2 * 1024**3
PARTIAL_SUFFIX = ".part"
_GLB_HEADER = struct.Struct("<4sII")
# File hosts answer these for a signed URL past its hour (or a wrong one).
_EXPIRED_STATUSES = (403, 404, 410)

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int


def url_extension(url: str) -> str:
    """The file extension of a URL's path, lower case, without dot ('' if none).

    Taken from the path only: signed URLs carry ``?auth_key=...``.
    """
    suffix = PurePosixPath(unquote(urlsplit(url).path)).suffix
    return suffix[1:].lower() if suffix else ""


def check_result_url(url: str) -> None:
    """Refuse anything but http(s): a URL from a server is still input."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise BadResultFile("Hitem3D sent a result link that is not http(s): not downloaded")


def check_glb(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a complete binary glTF 2.0."""
    size = path.stat().st_size
    with path.open("rb") as file:
        header = file.read(_GLB_HEADER.size)
    if len(header) < _GLB_HEADER.size or header[:4] != b"glTF":
        raise BadResultFile("The downloaded result is not a GLB file: retry, or check the task on Hitem3D")
    _, version, length = _GLB_HEADER.unpack(header)
    if version != 2:
        raise BadResultFile(f"The result is glTF version {version}; Blender imports version 2")
    if length != size:
        raise BadResultFile("The downloaded GLB is incomplete: retry")


_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def check_image(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` starts like a WebP, PNG or JPEG."""
    with path.open("rb") as file:
        head = file.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return
    if any(head.startswith(signature) for signature in _IMAGE_SIGNATURES):
        return
    raise BadResultFile("The cover image is not a WebP, PNG or JPEG file")


class CancelToken:
    """Cancels a job from another thread: sets an event and aborts open responses.

    Closing the response is what wakes a worker blocked in a read, so a cancel
    takes effect at once rather than at the next chunk or timeout.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._responses: set[requests.Response] = set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            _abort(response)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(max(0.0, seconds))

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def track(self, response: requests.Response) -> None:
        with self._lock:
            self._responses.add(response)

    def untrack(self, response: requests.Response) -> None:
        with self._lock:
            self._responses.discard(response)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket under a streaming response, for urllib3 2.x and 1.x."""
    raw = response.raw
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _abort(response: requests.Response) -> None:
    """Wake a thread blocked reading ``response``, from another thread.

    NOTE: ``close()`` alone does not interrupt a blocked ``recv``: a slow or
    stalled body would keep the worker until the next chunk or the read
    timeout. Shutting the socket down makes the ``recv`` return at once.
    """
    sock = _socket_of(response)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:  # noqa: BLE001 - best effort from another thread
        pass


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def stream_to_file(
    session: requests.Session,
    url: str,
    dest: Path,
    *,
    cancel: CancelToken,
    on_progress: ProgressCallback | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 30.0,
    validate: Callable[[Path], None] | None = check_glb,
) -> Downloaded:
    """Download ``url`` to ``dest``; on any failure no file is left behind.

    The request carries no Authorization header: result links are signed CDN
    URLs and our credentials belong to the API host only.
    """
    check_result_url(url)
    host = urlsplit(url).netloc
    cancel.raise_if_cancelled()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    try:
        response = session.get(url, stream=True, timeout=timeout_s, headers={"User-Agent": USER_AGENT})
    except requests.RequestException as exc:
        raise network_error(exc, host) from None
    cancel.track(response)
    try:
        with response:
            if response.status_code in _EXPIRED_STATUSES:
                raise ExpiredUrl(f"The result link expired (HTTP {response.status_code}): asking for a new one")
            if response.status_code != 200:
                raise NetworkError(f"The file host answered HTTP {response.status_code}: retry in a moment")
            total = _content_length(response)
            if total is not None and total > max_bytes:
                raise BadResultFile(
                    f"The result is {total / 1e6:,.0f} MB, over the {max_bytes / 1e6:,.0f} MB limit: not downloaded"
                )
            written = 0
            with partial.open("wb") as file:
                for chunk in response.iter_content(CHUNK_SIZE):
                    cancel.raise_if_cancelled()
                    file.write(chunk)
                    written += len(chunk)
                    if written > max_bytes:
                        raise BadResultFile("The result is larger than the download limit: not downloaded")
                    if on_progress is not None:
                        on_progress(written, total)
            cancel.raise_if_cancelled()
            if total is not None and written != total:
                raise NetworkError("The download was cut short: retry")
        if validate is not None:
            validate(partial)
        os.replace(partial, dest)
        return Downloaded(dest, written)
    except BaseException as exc:
        remove_quietly(partial)
        # A cancel closes the response under the reader: whatever that raised,
        # the user asked for it.
        if cancel.cancelled and not isinstance(exc, Cancelled):
            raise Cancelled() from None
        if isinstance(exc, requests.RequestException):
            raise network_error(exc, host) from None
        raise
    finally:
        cancel.untrack(response)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or "Content-Encoding" in response.headers:
        # With compression the header counts encoded bytes, not what we write.
        return None
    try:
        return int(value)
    except ValueError:
        return None

