"""How connections are made, and what to tell the user when one fails.

``new_session`` builds a ``requests.Session`` that follows a ``NetworkConfig``:
the proxy mode, and a CA bundle that adds trust (TLS verification is never
turned off). ``failure_error`` turns a transport exception into one short
message per cause: name resolution, TLS certificate, proxy, refused, timeout.

No ``bpy`` here: the API client and the downloader use it from worker threads.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import socket
import ssl
import tempfile
import threading
from enum import Enum
import urllib.request
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import requests
import requests.certs

from .cancel import new_session as _cancellable_session
from .errors import NetworkError
from .messages import N_, msg
from .logs import register_secret
from .settings import PROXY_CUSTOM, PROXY_ENVIRONMENT, PROXY_NONE, PROXY_SYSTEM, NetworkConfig

log = logging.getLogger(__name__)

# OpenSSL's X509_V_ERR_* codes worth a message of their own.
_X509_CERT_HAS_EXPIRED = 10
_X509_NAME_MISMATCH = frozenset({62, 64})  # host name, IP address


class Cause(str, Enum):
    """Why a connection failed, as far as the exception chain tells."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS_UNTRUSTED = "tls-untrusted"
    TLS_EXPIRED = "tls-expired"
    TLS_HOSTNAME = "tls-hostname"
    TLS = "tls"
    PROXY_DNS = "proxy-dns"
    PROXY_REFUSED = "proxy-refused"
    PROXY_TIMEOUT = "proxy-timeout"
    PROXY_AUTH = "proxy-auth"
    PROXY_UNSUPPORTED = "proxy-unsupported"
    PROXY = "proxy"
    UNREACHABLE = "unreachable"
    OTHER = "other"


# One message per cause ({host} is the host that was asked for). Short, says
# what to do; never the exception's text, which can carry a signed URL.
MESSAGES: dict[Cause, str] = {
    Cause.DNS: N_("Cannot reach {host}: the name does not resolve (DNS); check the API base URL and your "
                  "internet connection"),
    Cause.REFUSED: N_("Cannot reach {host}: connection refused; check the API base URL and port"),
    Cause.TIMEOUT: N_("{host} did not answer in time: check your connection, or raise the timeout in Network settings"),
    Cause.TLS_UNTRUSTED: N_("TLS certificate of {host} is not trusted: if your network inspects HTTPS, "
                            "set its CA bundle in Network settings"),
    Cause.TLS_EXPIRED: N_("TLS certificate of {host} has expired: check this computer's date and time"),
    Cause.TLS_HOSTNAME: N_("TLS certificate does not match {host}: check the API base URL"),
    Cause.TLS: N_("Secure connection to {host} failed (TLS): check the API base URL and the proxy settings"),
    Cause.PROXY_DNS: N_("Cannot resolve the proxy's host name: check the proxy in Network settings"),
    Cause.PROXY_REFUSED: N_("The proxy refused the connection: check the proxy in Network settings"),
    Cause.PROXY_TIMEOUT: N_("The proxy did not answer in time: check the proxy in Network settings"),
    Cause.PROXY_AUTH: N_("The proxy asks for a password: use http://user:password@host:port as proxy URL"),
    Cause.PROXY_UNSUPPORTED: N_("SOCKS proxies are not supported: set an HTTP proxy in Network settings"),
    Cause.PROXY: N_("The proxy could not connect to {host}: check the proxy in Network settings"),
    Cause.UNREACHABLE: N_("Cannot reach {host}: check your internet connection, then retry"),
    Cause.OTHER: N_("Connection to {host} failed: retry in a moment"),
}


class NetworkFailure(NetworkError):
    """A ``NetworkError`` that knows its cause. Retryable like every network
    error: a proxy or TLS fault can be a passing one (a captive portal, a
    proxy restart), and the worker shows the message while it retries."""

    def __init__(self, cause: Cause, host: str) -> None:
        super().__init__(msg(MESSAGES[cause], host=host))
        self.cause = cause


# -- sessions ---------------------------------------------------------------------------


def new_session(network: NetworkConfig) -> requests.Session:
    """A cancellable session that follows ``network``."""
    session = _ConfiguredSession(network)
    # NOTE: the cancellable adapters come from ``cancel.new_session`` so both
    # features compose without either knowing the other's classes.
    for prefix, adapter in _cancellable_session().adapters.items():
        session.mount(prefix, adapter)
    return session


class _ConfiguredSession(requests.Session):
    """Proxies and trust decided by the settings alone.

    NOTE: only the "system" mode lets requests read the environment. In the
    other modes no OS proxy, netrc or ``REQUESTS_CA_BUNDLE`` can change what the
    settings say; in every mode a CA bundle setting wins over the environment.
    """

    def __init__(self, network: NetworkConfig) -> None:
        super().__init__()
        self.network = network
        self.trust_env = network.proxy_mode == PROXY_SYSTEM
        self._trust: bool | str = combined_ca_bundle(network.ca_bundle) if network.ca_bundle else True
        self.verify = self._trust
        # A proxy URL can carry a password: mask it in every log line.
        proxies = [network.proxy_url] if network.proxy_url else []
        if network.proxy_mode in (PROXY_SYSTEM, PROXY_ENVIRONMENT):
            proxies += urllib.request.getproxies_environment().values()
        for proxy in proxies:
            try:
                password = urlsplit(proxy).password
            except ValueError:
                continue
            if password:
                register_secret(password)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.network.ca_bundle or merged.get("verify") is False:
            merged["verify"] = self._trust  # never off
        mode = self.network.proxy_mode
        if mode == PROXY_NONE:
            merged["proxies"] = {}
        elif mode == PROXY_CUSTOM:
            merged["proxies"] = {"http": self.network.proxy_url, "https": self.network.proxy_url}
        elif mode == PROXY_ENVIRONMENT:
            merged["proxies"] = environment_proxies(str(url))
        return merged


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` name for
    ``url``, or none when ``NO_PROXY`` covers its host."""
    proxies = urllib.request.getproxies_environment()
    host = urlsplit(url).hostname or ""
    if _proxy_bypass_environment(host, proxies):
        return {}
    return {key: value for key, value in proxies.items() if key in ("http", "https", "all")}


# NOTE: the environment-only NO_PROXY test (never the Windows registry or the
# macOS settings, as ``proxy_bypass`` would); undocumented, so not in typeshed.
_proxy_bypass_environment: Callable[[str, dict[str, str]], bool] = getattr(
    urllib.request, "proxy_bypass_environment")

_bundles: dict[str, str] = {}  # digest of the contents -> temporary file
_bundles_lock = threading.Lock()


def combined_ca_bundle(extra: str) -> str:
    """A PEM file with the public CAs requests trusts plus those in ``extra``.

    NOTE: the user's file adds trust rather than replacing it, so hosts the
    corporate proxy does not intercept (a CDN, say) still verify. The file is
    made with ``mkstemp`` (private, unpredictable name), never reused from a
    shared folder where someone else could have planted one.
    """
    try:
        with open(requests.certs.where(), "rb") as public_file:
            public = public_file.read()
        with open(extra, "rb") as extra_file:
            added = extra_file.read()
    except OSError:
        log.warning("Could not combine CA bundles; using %s alone", extra)
        return extra
    data = public.rstrip(b"\n") + b"\n" + added
    digest = hashlib.sha256(data).hexdigest()
    with _bundles_lock:
        existing = _bundles.get(digest)
        if existing is not None and os.path.isfile(existing):
            return existing
        fd, path = tempfile.mkstemp(prefix="hitem3d-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        if not _bundles:
            atexit.register(_remove_bundles)
        _bundles[digest] = path
    return path


def _remove_bundles() -> None:
    with _bundles_lock:
        paths = list(_bundles.values())
        _bundles.clear()
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


# -- diagnostics ----------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (args, ``reason``, causes)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen or len(seen) > 32:
            continue
        seen.add(id(current))
        yield current
        inner = [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                inner.append(linked)
        pending.extend(inner)


def _named(exceptions: list[BaseException], name: str) -> bool:
    # urllib3 1.x and 2.x (and Blender's bundled copies) differ in classes:
    # names are what they share.
    return any(type(item).__name__ == name for item in exceptions)


def classify(exc: BaseException) -> Cause:
    """The cause of a transport failure, from the exception and what it wraps."""
    chain = list(_chain(exc))
    text = " ".join(str(item) for item in chain)
    dns = any(isinstance(item, socket.gaierror) for item in chain) or _named(chain, "NameResolutionError")
    refused = any(isinstance(item, ConnectionRefusedError) for item in chain)
    timeout = any(isinstance(item, (TimeoutError, requests.exceptions.Timeout)) for item in chain) or _named(
        chain, "ConnectTimeoutError")
    if "SOCKS support" in text or "Missing dependencies for SOCKS" in text:
        return Cause.PROXY_UNSUPPORTED
    if isinstance(exc, requests.exceptions.ProxyError) or _named(chain, "ProxyError"):
        if " 407" in text or "Proxy Authentication Required" in text:
            return Cause.PROXY_AUTH
        if dns:
            return Cause.PROXY_DNS
        if refused:
            return Cause.PROXY_REFUSED
        if timeout:
            return Cause.PROXY_TIMEOUT
        return Cause.PROXY
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(item, ssl.SSLError) for item in chain):
        return _tls_cause(chain, text)
    if timeout:
        return Cause.TIMEOUT
    if dns:
        return Cause.DNS
    if refused:
        return Cause.REFUSED
    if isinstance(exc, requests.exceptions.ConnectionError):
        return Cause.UNREACHABLE
    return Cause.OTHER


def _tls_cause(chain: list[BaseException], text: str) -> Cause:
    verification = [item for item in chain if isinstance(item, ssl.SSLCertVerificationError)]
    for item in verification:
        if item.verify_code == _X509_CERT_HAS_EXPIRED:
            return Cause.TLS_EXPIRED
        if item.verify_code in _X509_NAME_MISMATCH:
            return Cause.TLS_HOSTNAME
    if verification or "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return Cause.TLS_UNTRUSTED
    if any(isinstance(item, ssl.SSLError) for item in chain):
        return Cause.TLS  # a handshake that failed for another reason
    return Cause.TLS_UNTRUSTED  # no detail: by far the most common TLS failure


def failure_error(exc: BaseException, host: str) -> NetworkFailure:
    """The user-facing error for a transport failure talking to ``host``."""
    cause = classify(exc)
    log.debug("Connection to %s failed: %s (%s)", host, cause.value, type(exc).__name__)
    return NetworkFailure(cause, host)


def proxy_auth_error(host: str) -> NetworkFailure:
    """For an HTTP 407 answer: the proxy wants credentials we did not send."""
    return NetworkFailure(Cause.PROXY_AUTH, host)
