"""Network stand-ins for tests: a self-signed certificate, the simulator over
TLS, and a small recording HTTP proxy on loopback. Standard library plus the
``openssl`` command (the venvs have no ``cryptography`` package)."""

from __future__ import annotations

import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from socketserver import BaseRequestHandler, ThreadingTCPServer
from typing import Any

from tests.support.simulator import Hitem3DSimulator

_REQUEST_LINE = re.compile(rb"(?m)^(GET|POST|HEAD|PUT|DELETE|CONNECT) (\S+) HTTP/1\.[01]\r$")


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM, self-signed: it is also its own CA
    key: Path


def make_certificate(folder: Path, *, names: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost"),
                     common_name: str = "127.0.0.1") -> Certificate:
    """A fresh self-signed certificate valid for ``names`` (subjectAltName)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        import pytest

        pytest.skip("needs the openssl command to make a certificate")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={common_name}",
         "-addext", "subjectAltName=" + ",".join(names),
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"],
        check=True, capture_output=True,
    )
    return Certificate(cert, key)


class TlsSimulator(Hitem3DSimulator):
    """The simulator answering https:// with ``certificate`` (file URLs too)."""

    def __init__(self, certificate: Certificate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate.cert, certificate.key)

    def start(self) -> TlsSimulator:
        super().start()
        server = self._server
        assert server is not None
        # NOTE: wrapping keeps the listening socket's descriptor, so the serving
        # thread's selector still watches it. A handshake a client rejects
        # fails inside accept(), which socketserver ignores (it is an OSError).
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        return self

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records what goes through it.

    Absolute-URI requests (``GET http://host/path``: a proxy for http:// URLs)
    are relayed to the host as they are: the simulator reads the path from an
    absolute URI just as well. ``CONNECT host:port`` opens a tunnel (https://).
    ``answer`` makes it refuse instead, e.g. ``b"407 Proxy Authentication
    Required"`` or ``b"403 Forbidden"``.
    """

    def __init__(self, answer: bytes | None = None) -> None:
        self.answer = answer
        self.lines: list[str] = []  # request lines seen, in order
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def seen(self, fragment: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if fragment in line]

    def _record(self, data: bytes) -> None:
        found = [f"{m.group(1).decode()} {m.group(2).decode()}" for m in _REQUEST_LINE.finditer(data)]
        if found:
            with self._lock:
                self.lines.extend(found)

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        self._record(head)
        method, target = head.split(b" ", 2)[:2]
        if self.answer is not None:
            client.sendall(b"HTTP/1.1 " + self.answer + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == b"CONNECT":
            host, _, port = target.decode().rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=10)
            _, _, rest = head.partition(b"\r\n\r\n")
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._pipe(client, upstream, record=False)
            return
        address = re.match(rb"https?://([^/:]+):?(\d*)", target)
        if address is None:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream = socket.create_connection((address.group(1).decode(), int(address.group(2) or 80)), timeout=10)
        upstream.sendall(head)
        self._pipe(client, upstream, record=True)

    def _pipe(self, client: socket.socket, upstream: socket.socket, *, record: bool) -> None:
        """Relay both ways until one side closes; later requests on a
        keep-alive connection are recorded from the client's bytes."""
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if record:
                            self._record(data)
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
