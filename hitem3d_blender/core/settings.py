"""Connection settings: where the API lives and who we are.

Values come from the add-on preferences; an empty preference falls back to an
environment variable so pipelines and tests need no saved preferences.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from .errors import CredentialsMissing, Hitem3DError
from .messages import msg

DEFAULT_BASE_URL = "https://api.hitem3d.ai"
DEFAULT_POLL_INTERVAL_S = 3.0
DEFAULT_REQUEST_TIMEOUT_S = 30.0

ENV_BASE_URL = "HITEM3D_API_BASE"
ENV_CLIENT_ID = "HITEM3D_CLIENT_ID"
ENV_CLIENT_SECRET = "HITEM3D_CLIENT_SECRET"
ENV_CA_BUNDLE = "HITEM3D_CA_BUNDLE"

# How requests find their proxy. Values are data: the preferences offer them
# as an enum and the session builder (``network``) interprets them.
PROXY_SYSTEM = "system"  # the OS settings and the usual *_PROXY variables
PROXY_ENVIRONMENT = "environment"  # only HTTPS_PROXY / HTTP_PROXY / NO_PROXY
PROXY_NONE = "none"  # always connect directly
PROXY_CUSTOM = "custom"  # every request through proxy_url
PROXY_MODES = (PROXY_SYSTEM, PROXY_ENVIRONMENT, PROXY_NONE, PROXY_CUSTOM)


class InvalidBaseUrl(Hitem3DError):
    pass


class InvalidNetworkSetting(Hitem3DError):
    """A proxy URL or CA bundle that cannot work; nothing was sent."""


@dataclass(frozen=True)
class NetworkConfig:
    """How connections are made: proxy and extra trusted certificates.

    ``proxy_url`` may carry a user name and password, so it is kept out of
    ``repr``. TLS verification is always on; ``ca_bundle`` only adds trust.
    """

    proxy_mode: str = PROXY_SYSTEM
    proxy_url: str = field(default="", repr=False)
    ca_bundle: str = ""  # absolute path of a PEM file, or empty
    # The bundle file's (mtime, size): an edited file makes different settings,
    # so clients cached per settings pick the new certificates up.
    ca_bundle_stamp: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ApiSettings:
    """Everything a worker needs to talk to the API, as plain values.

    The secret is excluded from ``repr`` so a settings object in a log line or a
    traceback never shows it.
    """

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    network: NetworkConfig = NetworkConfig()

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def require_credentials(self) -> None:
        if not self.has_credentials:
            raise CredentialsMissing()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _explicit(value: str, default: str) -> str:
    """``value`` unless it is empty or the untouched default."""
    value = value.strip()
    return "" if value.rstrip("/") == default else value


def normalize_base_url(text: str) -> str:
    """The base URL without trailing slash or a pasted ``/open-api/v1`` suffix.

    Only ``https`` is accepted, except plain ``http`` to this machine (the local
    simulator): credentials must never cross a network unencrypted.
    """
    url = text.strip().rstrip("/")
    if url.endswith("/open-api/v1"):
        url = url[: -len("/open-api/v1")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidBaseUrl(msg("API base URL must look like {example}", example=DEFAULT_BASE_URL))
    if parts.username is not None or parts.password is not None:
        # NOTE: the message never quotes the URL: it holds a password.
        raise InvalidBaseUrl(msg("API base URL must not contain a user name or password: remove the part "
                                 "before @ and set the Client ID and Secret instead"))
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidBaseUrl(msg("API base URL must use https:// (http:// only for this computer)"))
    return url


def normalize_proxy_url(text: str) -> str:
    """An http(s) proxy URL; ``host:port`` alone means ``http://host:port``."""
    url = text.strip()
    if url and "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme.startswith("socks"):
        raise InvalidNetworkSetting(msg("SOCKS proxies are not supported: use an HTTP proxy URL such as http://proxy:3128"))
    try:
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidNetworkSetting(msg("Proxy URL must look like http://proxy.example.com:3128"))
    return url


def check_ca_bundle(text: str) -> str:
    """The absolute path of a readable PEM file of CA certificates."""
    path = os.path.abspath(os.path.expanduser(text.strip()))
    name = os.path.basename(path) or path
    if not os.path.isfile(path):
        raise InvalidNetworkSetting(msg("CA bundle file not found: {path}", path=path))
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        raise InvalidNetworkSetting(msg(
            "CA bundle {name} holds no PEM certificate: export the CA certificate as PEM (Base64)", name=name
        )) from None
    return path


def resolve_network(
    *,
    proxy_mode: str = PROXY_SYSTEM,
    proxy_url: str = "",
    ca_bundle: str = "",
    environ: Mapping[str, str] | None = None,
) -> NetworkConfig:
    """Network settings from preference values; an empty CA bundle is taken
    from ``$HITEM3D_CA_BUNDLE``. Raises ``InvalidNetworkSetting``."""
    env = os.environ if environ is None else environ
    mode = proxy_mode.strip().lower() or PROXY_SYSTEM
    if mode not in PROXY_MODES:
        raise InvalidNetworkSetting(msg("Unknown proxy mode {mode}: use one of {modes}", mode=repr(proxy_mode),
                                           modes=", ".join(PROXY_MODES)))
    if mode == PROXY_CUSTOM:
        if not proxy_url.strip():
            raise InvalidNetworkSetting(msg("Proxy is set to Custom but the proxy URL is empty"))
        url = normalize_proxy_url(proxy_url)
    else:
        url = ""
    bundle = ca_bundle.strip() or env.get(ENV_CA_BUNDLE, "").strip()
    if not bundle:
        return NetworkConfig(mode, url)
    path = check_ca_bundle(bundle)
    stat = os.stat(path)
    return NetworkConfig(mode, url, path, (stat.st_mtime_ns, stat.st_size))


def resolve(
    *,
    base_url: str = "",
    client_id: str = "",
    client_secret: str = "",
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    proxy_mode: str = PROXY_SYSTEM,
    proxy_url: str = "",
    ca_bundle: str = "",
    environ: Mapping[str, str] | None = None,
) -> ApiSettings:
    """Settings from preference values. Which value wins: one set in the
    preferences, then the environment variable, then the default. An API base
    URL equal to the default counts as not set: the preferences field shows
    the default, and a pipeline's ``$HITEM3D_API_BASE`` must still apply."""
    env = os.environ if environ is None else environ
    return ApiSettings(
        base_url=normalize_base_url(_explicit(base_url, DEFAULT_BASE_URL) or env.get(ENV_BASE_URL, "").strip()
                                    or DEFAULT_BASE_URL),
        client_id=client_id.strip() or env.get(ENV_CLIENT_ID, "").strip(),
        client_secret=client_secret.strip() or env.get(ENV_CLIENT_SECRET, "").strip(),
        poll_interval_s=max(0.05, poll_interval_s),
        request_timeout_s=max(1.0, request_timeout_s),
        network=resolve_network(proxy_mode=proxy_mode, proxy_url=proxy_url, ca_bundle=ca_bundle, environ=env),
    )
