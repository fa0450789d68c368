"""Connection settings: where the API lives and who we are.

Values come from the add-on preferences; an empty preference falls back to an
environment variable so pipelines and tests need no saved preferences.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from .errors import CredentialsMissing, Hitem3DError

DEFAULT_BASE_URL = "https://api.hitem3d.ai"
DEFAULT_POLL_INTERVAL_S = 3.0
DEFAULT_REQUEST_TIMEOUT_S = 30.0

ENV_BASE_URL = "HITEM3D_API_BASE"
ENV_CLIENT_ID = "HITEM3D_CLIENT_ID"
ENV_CLIENT_SECRET = "HITEM3D_CLIENT_SECRET"


class InvalidBaseUrl(Hitem3DError):
    pass


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
        raise InvalidBaseUrl(f"API base URL must look like {DEFAULT_BASE_URL}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidBaseUrl("API base URL must use https:// (http:// only for this computer)")
    return url


def resolve(
    *,
    base_url: str = "",
    client_id: str = "",
    client_secret: str = "",
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
) -> ApiSettings:
    """Settings from preference values, each empty one taken from the environment."""
    env = os.environ if environ is None else environ
    return ApiSettings(
        base_url=normalize_base_url(base_url.strip() or env.get(ENV_BASE_URL, "") or DEFAULT_BASE_URL),
        client_id=client_id.strip() or env.get(ENV_CLIENT_ID, "").strip(),
        client_secret=client_secret.strip() or env.get(ENV_CLIENT_SECRET, "").strip(),
        poll_interval_s=max(0.05, poll_interval_s),
        request_timeout_s=max(1.0, request_timeout_s),
    )
