"""The Hitem3D open API client: token, query-task, balance.

NOTE: the Bearer token and the Basic credentials are added per request, never to
the session's default headers, so the same session cannot carry them to the file
host. Result files are fetched by ``downloader`` with a session of its own.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests

from . import errors
from .errors import (
    ApiError,
    GenerationFailed,
    Hitem3DError,
    InvalidCredentials,
    NetworkError,
    ServerError,
    TaskNotFound,
)
from .settings import ApiSettings

log = logging.getLogger(__name__)

API_PREFIX = "/open-api/v1"
USER_AGENT = "hitem3d-blender"
TOKEN_LIFETIME_S = 24 * 3600.0
# Renew well before the documented lifetime: clocks differ and a token that dies
# between our check and the server's is a wasted round trip.
TOKEN_RENEW_MARGIN_S = 15 * 60.0

TASK_STATES = ("created", "queueing", "processing", "success", "failed")
_NOT_FOUND_HINTS = ("not exist", "not found", "no such task", "invalid task")


@dataclass(frozen=True)
class TaskStatus:
    """What query-task says about a task, normalised."""

    task_id: str
    state: str  # one of TASK_STATES, lower case
    progress: float | None = None
    model_url: str | None = None
    cover_url: str | None = None


class _Unauthorized(Exception):
    """HTTP 401 or code 401: the token is missing, bad or expired."""


def _code_of(body: Mapping[str, Any]) -> str:
    # Documented as a string, sent as a number: always compare strings.
    return str(body.get("code", "")).strip()


def _message_of(body: Mapping[str, Any]) -> str:
    # The key is ``msg`` in most answers and ``message`` in the token example.
    for key in ("msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _progress_of(data: Mapping[str, Any]) -> float | None:
    value = data.get("progress")
    try:
        progress = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return min(100.0, max(0.0, progress))


def network_error(exc: requests.RequestException, host: str) -> NetworkError:
    """A user message for a transport failure. Never quotes ``exc``: its text can
    carry a signed URL."""
    if isinstance(exc, requests.exceptions.SSLError):
        return NetworkError(f"TLS certificate of {host} could not be verified: check proxy or CA settings")
    if isinstance(exc, requests.exceptions.ProxyError):
        return NetworkError(f"The proxy refused the connection to {host}: check proxy settings")
    if isinstance(exc, requests.exceptions.Timeout):
        return NetworkError(f"{host} did not answer in time: check your connection, then retry")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return NetworkError(f"Cannot reach {host}: check your internet connection, then retry")
    return NetworkError(f"Connection to {host} failed: retry in a moment")


def error_for_code(code: str, message: str) -> Hitem3DError:
    """The exception for a non-success ``code`` in an answer's body."""
    if code == errors.CODE_INVALID_CREDENTIALS:
        return InvalidCredentials()
    if code == errors.CODE_SYSTEM_ERROR:
        return ServerError(errors.message_for_code(code, message), code=code)
    if code == errors.CODE_GENERATE_FAILED:
        return GenerationFailed(
            "Generation failed on Hitem3D (credits are refunded): retry, or try another image"
            f" (code {code})",
            code=code,
        )
    if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
        return TaskNotFound(f"Hitem3D has no task with this ID: check the ID (code {code})", code=code)
    return ApiError(errors.message_for_code(code, message), code=code)


class Hitem3DClient:
    """A thread-safe client for one set of credentials.

    The access token is cached in memory only; every call that meets a 401 gets
    a new token once and repeats once.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.host = urlsplit(settings.base_url).netloc
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def close(self) -> None:
        self._session.close()

    # -- token ---------------------------------------------------------------

    def fetch_token(self) -> str:
        """A new access token from the credentials; also the "Test connection"."""
        self.settings.require_credentials()
        pair = f"{self.settings.client_id}:{self.settings.client_secret}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
            "Content-Type": "application/json",
        }
        try:
            body = self._send("POST", "/auth/token", headers=headers)
        except _Unauthorized:
            raise InvalidCredentials() from None
        token = body.get("accessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServerError("Hitem3D sent no access token: retry in a few minutes")
        with self._lock:
            self._token = token
            self._token_expires = self._clock() + TOKEN_LIFETIME_S - TOKEN_RENEW_MARGIN_S
        return token

    def _current_token(self) -> str:
        with self._lock:
            if self._token and self._clock() < self._token_expires:
                return self._token
        return self.fetch_token()

    def _forget_token(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    # -- calls ---------------------------------------------------------------

    def query_task(self, task_id: str) -> TaskStatus:
        """The task's state now. Raises a ``Hitem3DError`` for every failure,
        ``GenerationFailed`` included."""
        data = self._call("GET", "/query-task", params={"task_id": task_id})
        if not isinstance(data, dict):
            raise ServerError("Hitem3D sent an unreadable task status: retry in a few minutes")
        state = str(data.get("state", "")).strip().lower()
        if state not in TASK_STATES:
            raise ApiError(f"Hitem3D reported an unknown task state: {state or 'none'!r}")
        if state == "failed":
            raise GenerationFailed(
                "Generation failed on Hitem3D (credits are refunded): retry, or try another image"
            )
        url = data.get("url")
        cover = data.get("cover_url")
        return TaskStatus(
            task_id=str(data.get("task_id") or task_id),
            state=state,
            progress=_progress_of(data),
            model_url=url if isinstance(url, str) and url else None,
            cover_url=cover if isinstance(cover, str) and cover else None,
        )

    def balance(self) -> float:
        data = self._call("GET", "/balance")
        try:
            return float(data["totalBalance"])
        except (KeyError, TypeError, ValueError):
            raise ServerError("Hitem3D sent an unreadable balance: retry in a moment") from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A Bearer call; on 401 get a new token once and repeat once."""
        for attempt in (1, 2):
            token = self._current_token()
            try:
                return self._send(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            except _Unauthorized:
                self._forget_token(token)
                if attempt == 2:
                    raise ApiError("Hitem3D did not accept a fresh access token: check your credentials")
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, *, headers: Mapping[str, str], **kwargs: Any) -> Any:
        """One request; returns ``data`` of a success answer or raises."""
        url = self.settings.base_url + API_PREFIX + path
        try:
            response = self._session.request(
                method, url, headers=dict(headers), timeout=self.settings.request_timeout_s, **kwargs
            )
        except requests.RequestException as exc:
            raise network_error(exc, self.host) from None
        with response:
            if response.status_code == 401:
                raise _Unauthorized()
            if response.status_code == 429 or response.status_code >= 500:
                raise ServerError(
                    f"Hitem3D is unavailable (HTTP {response.status_code}): retry in a few minutes",
                    retry_after=_retry_after(response),
                )
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                if response.status_code == 404:
                    raise ApiError(f"{self.host} has no Hitem3D API here (HTTP 404): check the API base URL")
                raise ServerError(f"Hitem3D sent an unreadable answer (HTTP {response.status_code}): retry in a few minutes")
        code = _code_of(body)
        if code == errors.CODE_UNAUTHORIZED:
            raise _Unauthorized()
        if code != "200":
            raise error_for_code(code, _message_of(body))
        return body.get("data")
