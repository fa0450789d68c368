"""Cancelling work that is blocked in the network, from another thread.

A worker thread runs inside ``cancel_scope(token)``. Every HTTP connection it
uses while sending a request and waiting for the answer's headers, and every
response body it reads, is registered with its token. ``token.cancel()`` then
shuts those sockets down, which makes a blocked ``recv`` return at once: a
slow API answer or a stalled download cannot hold Blender's quit or an add-on
disable for longer than it takes the thread to notice.

NOTE: ``Response.close()`` alone does not interrupt a blocked read, and a
request that is still waiting for headers has no response object yet; hence
the connection pool subclasses below, mounted by ``new_session``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any, Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import Cancelled

_local = threading.local()


def _shutdown(sock: Any) -> None:
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _socket_of_response(response: requests.Response) -> Any:
    """The socket under a streaming response, for urllib3 2.x and 1.x."""
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is not None:
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    return getattr(getattr(fp, "raw", None), "_sock", None)


class CancelToken:
    """Cancels a job from another thread: sets an event and aborts its sockets."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._responses: set[requests.Response] = set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()
        with self._lock:
            connections = list(self._connections)
            responses = list(self._responses)
        for connection in connections:
            _shutdown(getattr(connection, "sock", None))
        for response in responses:
            sock = _socket_of_response(response)
            if sock is not None:
                # NOTE: only shut the socket down; the worker closes its own
                # response. ``close()`` from this thread races the worker's
                # read inside http.client (both clear ``fp``: AttributeError).
                _shutdown(sock)
                continue
            try:
                response.close()  # no socket found: the best left to do
            except Exception:  # noqa: BLE001 - best effort from another thread
                pass

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(max(0.0, seconds))

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def track(self, response: requests.Response) -> None:
        with self._lock:
            self._responses.add(response)
        if self._event.is_set():
            _shutdown(_socket_of_response(response))

    def untrack(self, response: requests.Response) -> None:
        with self._lock:
            self._responses.discard(response)

    @contextlib.contextmanager
    def connection(self, connection: Any) -> Iterator[None]:
        """While the block runs, cancelling aborts ``connection``."""
        with self._lock:
            self._connections.add(connection)
        try:
            yield
        finally:
            with self._lock:
                self._connections.discard(connection)


@contextlib.contextmanager
def cancel_scope(token: CancelToken) -> Iterator[CancelToken]:
    """Run the block with ``token`` as this thread's current cancel token."""
    previous = getattr(_local, "token", None)
    _local.token = token
    try:
        yield token
    finally:
        _local.token = previous


def current_token() -> CancelToken | None:
    token = getattr(_local, "token", None)
    return token if isinstance(token, CancelToken) else None


class _Tracked:
    """Mixin for urllib3 pools: register the connection while a request is sent
    and its headers awaited (the body is read later, through the response)."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        token = current_token()
        if token is None:
            return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]
        token.raise_if_cancelled()
        with token.connection(conn):
            return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _TrackedHTTPConnectionPool(_Tracked, HTTPConnectionPool):
    pass


class _TrackedHTTPSConnectionPool(_Tracked, HTTPSConnectionPool):
    pass


_TRACKED_POOLS = {"http": _TrackedHTTPConnectionPool, "https": _TrackedHTTPSConnectionPool}


class CancellableAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections the current cancel token can abort."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_TRACKED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_TRACKED_POOLS)
        return manager


def new_session() -> requests.Session:
    """A ``requests.Session`` whose requests can be aborted by ``CancelToken``."""
    session = requests.Session()
    adapter = CancellableAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
