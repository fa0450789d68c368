"""Connection settings: where the API lives and who we are.

Values come from the add-on preferences; an empty preference falls back to an
environment variable so pipelines and tests need no saved preferences.
"""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from .errors import CredentialsMissing, Hitem3DError, InvalidCredentials
from .messages import Message, msg

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


# Where a setting's value came from: the add-on preferences, an environment
# variable (pipelines, farms, the sandbox), or neither (the default, or unset).
FROM_PREFERENCES = "preferences"
FROM_ENVIRONMENT = "environment"
FROM_DEFAULT = "default"


class InvalidBaseUrl(Hitem3DError):
    pass


@dataclass(frozen=True)
class Sources:
    """Where each connection setting came from, so the preferences, Copy
    Diagnostics and every message about a setting name the place its value
    really is (a pipeline's variables win silently otherwise)."""

    base_url: str = FROM_DEFAULT
    client_id: str = FROM_PREFERENCES
    client_secret: str = FROM_PREFERENCES

    def missing(self) -> CredentialsMissing:
        """The error for credentials that are not both set, naming the variable
        still missing when the other came from the environment."""
        if self.client_id == FROM_ENVIRONMENT and self.client_secret == FROM_DEFAULT:
            return CredentialsMissing(msg("No Hitem3D Client Secret: HITEM3D_CLIENT_ID is set, so set "
                                          "HITEM3D_CLIENT_SECRET too (or both in the add-on preferences)"))
        if self.client_secret == FROM_ENVIRONMENT and self.client_id == FROM_DEFAULT:
            return CredentialsMissing(msg("No Hitem3D Client ID: HITEM3D_CLIENT_SECRET is set, so set "
                                          "HITEM3D_CLIENT_ID too (or both in the add-on preferences)"))
        return CredentialsMissing()

    def rejected(self) -> InvalidCredentials:
        """The error for a key pair Hitem3D refused, sending the artist to where it came from."""
        from_env = (self.client_id == FROM_ENVIRONMENT, self.client_secret == FROM_ENVIRONMENT)
        if from_env == (True, True):
            return InvalidCredentials(msg("Hitem3D rejected the Client ID or Client Secret from HITEM3D_CLIENT_ID "
                                          "and HITEM3D_CLIENT_SECRET: check those environment variables"))
        if from_env == (False, True):
            return InvalidCredentials(msg("Hitem3D rejected the Client ID or Client Secret: check the Client ID in "
                                          "the add-on preferences and HITEM3D_CLIENT_SECRET"))
        if from_env == (True, False):
            return InvalidCredentials(msg("Hitem3D rejected the Client ID or Client Secret: check HITEM3D_CLIENT_ID "
                                          "and the Client Secret in the add-on preferences"))
        return InvalidCredentials()

    def about_base_url(self, message: Message) -> Message:
        """``message``, about the API's address, with where that address came
        from when it is not the preferences' field the artist looks at."""
        if self.base_url != FROM_ENVIRONMENT:
            return message
        return msg("{message} (API base URL from HITEM3D_API_BASE)", message=message)


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
    sources: Sources = Sources()

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def require_credentials(self) -> None:
        if not self.has_credentials:
            raise self.sources.missing()


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


def _finite(value: float, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else default


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
    chosen = _choose_all(base_url, client_id, client_secret, env)
    sources = Sources(**{name: source for name, (_, source) in chosen.items()})
    try:
        url = normalize_base_url(chosen["base_url"][0] or DEFAULT_BASE_URL)
    except InvalidBaseUrl as exc:
        exc.reword(sources.about_base_url(exc.message))
        raise
    return ApiSettings(
        base_url=url,
        client_id=chosen["client_id"][0],
        client_secret=chosen["client_secret"][0],
        # NOTE: a NaN (a script, an old settings file) would compare false
        # with every bound: the default instead.
        poll_interval_s=max(0.05, _finite(poll_interval_s, DEFAULT_POLL_INTERVAL_S)),
        request_timeout_s=max(1.0, _finite(request_timeout_s, DEFAULT_REQUEST_TIMEOUT_S)),
        network=resolve_network(proxy_mode=proxy_mode, proxy_url=proxy_url, ca_bundle=ca_bundle, environ=env),
        sources=sources,
    )


def where_from(*, base_url: str = "", client_id: str = "", client_secret: str = "",
               environ: Mapping[str, str] | None = None) -> tuple[Sources, str]:
    """Where each connection setting comes from, and the API base URL in use
    as written (unchecked): cheap enough for every redraw of the preferences."""
    chosen = _choose_all(base_url, client_id, client_secret, os.environ if environ is None else environ)
    sources = Sources(**{name: source for name, (_, source) in chosen.items()})
    return sources, chosen["base_url"][0] or DEFAULT_BASE_URL


def _choose_all(base_url: str, client_id: str, client_secret: str,
                env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Each connection setting's value and source, by the order ``resolve`` promises."""
    return {name: _choose(preference, env.get(variable, "")) for name, preference, variable in (
        ("base_url", _explicit(base_url, DEFAULT_BASE_URL), ENV_BASE_URL),
        ("client_id", client_id, ENV_CLIENT_ID), ("client_secret", client_secret, ENV_CLIENT_SECRET))}


def _choose(preference: str, variable: str) -> tuple[str, str]:
    """The value that wins, and where it came from: a set preference, then the
    environment variable, then nothing."""
    if preference.strip():
        return preference.strip(), FROM_PREFERENCES
    if variable.strip():
        return variable.strip(), FROM_ENVIRONMENT
    return "", FROM_DEFAULT
