"""Streaming result files to disk without ever leaving half a file behind.

The file is written under a temporary name in the destination folder, its length
and format are checked, and only then is it renamed into place (an atomic
``os.replace`` on the same file system).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote, urlsplit

import requests

from . import glb_check, safe_files
from .api import USER_AGENT, network_error, redirect_error
from .network import proxy_auth_error
from .cancel import CancelToken
from .errors import BadResultFile, Cancelled, ExpiredUrl, NetworkError
from .instance_lock import process_tag
from .messages import msg

CHUNK_SIZE = 256 * 1024
DEFAULT_MAX_BYTES = 2 * 1024**3
PARTIAL_SUFFIX = ".part"
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
        raise BadResultFile(msg("Hitem3D sent a result link that is not http(s): not downloaded"))


def partial_path(dest: Path) -> Path:
    """Where ``dest`` is written until complete: ``<name>.<pid>-<tag>-<n>.part``,
    a new name for each download. The PID and the process's tag tell the
    folder's owner whose leftovers belong to a process that is gone
    (``instance_lock.leftover_partials``); the random part keeps two downloads
    of one task in this process (a run cancelled and started again before its
    worker noticed) out of each other's file."""
    global _tag
    if _tag is None:
        _tag = process_tag()
    return dest.with_name(f"{dest.name}.{os.getpid()}-{_tag}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


_tag: str | None = None  # this process's tag, read once


def check_glb(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a complete, self-contained
    binary glTF 2.0 within ``glb_check.DEFAULT_LIMITS``. The extensions it
    needs are judged where it is imported, by the Blender that imports it."""
    glb_check.check_glb(path, importer=None)


def check_image(path: Path) -> None:
    """Raise ``BadResultFile`` unless ``path`` is a WebP, PNG or JPEG small
    enough for a preview (``glb_check.MAX_COVER_PIXELS``)."""
    glb_check.check_cover(path)


def remove_quietly(path: Path) -> None:
    safe_files.remove(path)


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
    partial = partial_path(dest)
    try:
        response = session.get(url, stream=True, timeout=timeout_s, headers={"User-Agent": USER_AGENT})
    except requests.RequestException as exc:
        raise redirect_error(exc) or network_error(exc, host) from None
    cancel.track(response)
    try:
        with response:
            if response.status_code in _EXPIRED_STATUSES:
                raise ExpiredUrl(msg("The result link expired (HTTP {status}): asking for a new one",
                                     status=response.status_code))
            if response.status_code == 407:
                raise proxy_auth_error(host)
            if response.status_code != 200:
                raise NetworkError(msg("The file host answered HTTP {status}: retry in a moment",
                                         status=response.status_code))
            total = _content_length(response)
            if total is not None and total > max_bytes:
                raise BadResultFile(msg(
                    "The result is {size}, over the {limit} download limit in the add-on preferences: not downloaded",
                    size=_size(total), limit=_size(max_bytes)))
            written = 0
            # Never through a symlink planted at the partial file's name.
            with safe_files.create_new(partial) as file:
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        cancel.raise_if_cancelled()
                        # Checked before the write: a compressed body has no
                        # usable length, and not a byte past the limit is written.
                        if written + len(chunk) > max_bytes:
                            raise BadResultFile(msg("The result is larger than {limit}, the download limit in the "
                                                    "add-on preferences: not downloaded", limit=_size(max_bytes)))
                        file.write(chunk)
                        written += len(chunk)
                        if on_progress is not None:
                            on_progress(written, total)
                except requests.RequestException:
                    # No byte within the read timeout, or the connection broke.
                    cancel.raise_if_cancelled()
                    raise NetworkError(msg("The download from {host} stalled or was cut off: retry", host=host)) from None
            cancel.raise_if_cancelled()
            if total is not None and written != total:
                raise NetworkError(msg("The download was cut short: retry"))
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
        if safe_files.is_disk_full(exc) and not isinstance(exc, safe_files.DiskFull):
            raise safe_files.DiskFull(dest.parent) from None
        if isinstance(exc, requests.RequestException):
            raise network_error(exc, host) from None
        raise
    finally:
        cancel.untrack(response)


def _size(size: int) -> str:
    return f"{size / 1e9:,.1f} GB" if size >= 1e9 else f"{size / 1e6:,.0f} MB"


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or "Content-Encoding" in response.headers:
        # With compression the header counts encoded bytes, not what we write.
        return None
    try:
        return int(value)
    except ValueError:
        return None

