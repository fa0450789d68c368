"""The Hitem3D open API client: token, query-task, balance.

NOTE: the access token and the Basic credentials are added per request, never to
the session's default headers, so the same session cannot carry them to the file
host. Result files are fetched by ``downloader`` with a session of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import errors
from .messages import Message, msg
from .errors import (
    ApiError,
    BadResultFile,
    Cancelled,
    GenerationFailed,
    Hitem3DError,
    InvalidCredentials,
    NetworkError,
    NotFollowable,
    ServerError,
    TaskNotFound,
)
from .cancel import CancelToken, current_token
from .logs import clean_text, register_secret
from .network import failure_error, new_session, proxy_auth_error
from .settings import ApiSettings
from . import kind_requests, task_ids, task_kinds
from .task_kinds import Auth
from .kind_requests import KindRequest
from .submission import InvalidSubmission, RequestType, Submission, form_fields, read_files, validate
from .tos_signing import StorageCredentials

log = logging.getLogger(__name__)

API_PREFIX = "/open-api/v1"
USER_AGENT = "hitem3d-blender"
TOKEN_LIFETIME_S = 24 * 3600.0
# Renew well before the documented lifetime: clocks differ and a token that dies
# between our check and the server's is a wasted round trip.
TOKEN_RENEW_MARGIN_S = 15 * 60.0

MAX_ANSWER_BYTES = 1024 * 1024
# Keep-alive connections to the API host (``jobs`` passes its worker count).
DEFAULT_POOL_SIZE = 6
# How often a caller waiting for another's token request looks at its cancel token.
_TOKEN_WAIT_POLL_S = 0.05
# The README promises pauses of at most a minute, whatever a server asks for.
MAX_RETRY_AFTER_S = 60.0
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


class _Forbidden(Exception):
    """HTTP 403 without a code of Hitem3D's own. No official page shows one; a
    gateway in front of an API may answer it, rather than 401, to a scheme it
    does not take, so it gets the same new token and other scheme as a 401."""

    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said


class PathNotServed(ApiError):
    """HTTP 404 (with no API answer of its own), or code 404: nothing is
    served at this path. A wrong API base URL for the documented paths; for a
    path Hitem3D has not published, a guess that missed."""


class _TokenRefused(ApiError):
    """Every scheme refused a fresh token: the credentials, not the path."""


class _NoTask(ApiError):
    """A success answer without a task in it (no ``data.state``)."""

    def __init__(self) -> None:
        super().__init__(msg("Hitem3D sent an unreadable task status: retry in a few minutes"))


def _has_state(data: Any) -> bool:
    return isinstance(data, dict) and bool(str(data.get("state") or "").strip())


def _missed(exc: Hitem3DError, *, guessed: bool) -> bool:
    """Whether an answer to a query means "this path does not serve this
    task", so another path may be asked: nothing served there (404); and on
    a guessed path also "no such task", a code we do not know, or a system
    error in the body (what a service may say to an ID it cannot place). An
    HTTP 5xx, a failed generation or refused credentials say nothing of the path."""
    if isinstance(exc, _TokenRefused):
        return False
    if isinstance(exc, PathNotServed):
        return True
    if not guessed:
        return False
    if isinstance(exc, ServerError):
        return exc.code == errors.CODE_SYSTEM_ERROR
    return isinstance(exc, (TaskNotFound, ApiError))


def _code_of(body: Mapping[str, Any]) -> str:
    # Documented as a string, sent as a number (200, or 200.0 from some JSON
    # encoders): always compare the integer's digits as a string.
    value = body.get("code", "")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = clean_text(str(value), 40)
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text


def _message_of(body: Mapping[str, Any]) -> str:
    # The key is ``msg`` in most answers and ``message`` in the token example.
    for key in ("msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return clean_text(value)
    return ""


def _retry_after(response: requests.Response) -> float | None:
    """The server's ``Retry-After`` in seconds, at most ``MAX_RETRY_AFTER_S``:
    an hour's wait would look like a hang, and a task can always be retried."""
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def _progress_of(data: Mapping[str, Any]) -> float | None:
    value = data.get("progress")
    try:
        progress = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return min(100.0, max(0.0, progress))


def network_error(exc: requests.RequestException, host: str) -> NetworkError:
    """A user message for a transport failure, one per cause (``network.Cause``).
    Never quotes ``exc``: its text can carry a signed URL."""
    return failure_error(exc, host)


def _generation_failed() -> Message:  # noqa: N802
    return msg("Generation failed on Hitem3D (credits are refunded): retry, or try another image")


def redirect_error(exc: requests.RequestException) -> Hitem3DError | None:
    """A specific message when a host's redirects went wrong, else None.

    NOTE: requests refuses a redirect to ``file://`` (no adapter) and stops a
    loop after 30 hops; both used to end in a vague "connection failed"."""
    if isinstance(exc, requests.TooManyRedirects):
        # Not retried on its own: the next try would loop the same way.
        return Hitem3DError(msg("The server sent the request round in a redirect loop: retry later, or "
                                "check the API base URL and proxy"))
    if isinstance(exc, (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidURL)):
        return BadResultFile(msg("The server redirected to a link that is not http(s): refused"))
    return None


def error_for_code(code: str, message: str) -> Hitem3DError:
    """The exception for a non-success ``code`` in an answer's body."""
    if code == errors.CODE_INVALID_CREDENTIALS:
        return InvalidCredentials()
    if code == errors.CODE_SYSTEM_ERROR:
        return ServerError(errors.message_for_code(code, message), code=code)
    if code in errors.GENERATE_FAILED_CODES:
        return GenerationFailed(msg("{message} (code {code})", message=_generation_failed(), code=code), code=code)
    if code in errors.CODE_MESSAGES or code in errors.LIKELY_CAUSES:  # our reading beats a guess from its words
        return ApiError(errors.message_for_code(code, message), code=code)
    if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
        return TaskNotFound(msg("{message} (code {code})", code=code,
                                message=msg("Hitem3D has no task with this ID: check the ID")), code=code)
    return ApiError(errors.message_for_code(code, message), code=code)


def _pool_connections(session: requests.Session, size: int) -> None:
    """Keep up to ``size`` keep-alive connections per host for the API calls.

    NOTE: one per API worker (``jobs.JobRunner``), so a call never waits for a
    connection while a slow answer holds another; ``pool_block`` stays off so
    an extra caller opens a short-lived connection rather than waiting.
    """
    for prefix, adapter in list(session.adapters.items()):
        if isinstance(adapter, HTTPAdapter):
            session.mount(prefix, type(adapter)(pool_connections=4, pool_maxsize=size, pool_block=False))


class Hitem3DClient:
    """A thread-safe client for one set of credentials.

    The access token is cached in memory only. Each call sends it under the
    scheme its endpoint's page shows (``task_kinds.Endpoint.auth``); a call that
    meets a 401 gets a new token once and repeats, then tries the other scheme
    once, and the scheme that worked is kept for that path for the client's life.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.settings = settings
        self.host = urlsplit(settings.base_url).netloc
        self._session = session or new_session(settings.network)
        if session is None:
            _pool_connections(self._session, pool_size)
        self._session.headers["User-Agent"] = USER_AGENT
        self._clock = clock
        self._lock = threading.Lock()
        self._token_fetch = threading.Lock()  # one token request at a time
        self._token: str | None = None
        self._token_expires = 0.0
        # path -> the scheme Hitem3D took there when the documented one was refused.
        self._schemes: dict[str, Auth] = {}
        # A path whose page shows Token took Bearer: the other Token pages are
        # likely wrong the same way, so they try Bearer first too (Bearer is
        # what the vendor's client sends everywhere; never the other way round).
        self._token_pages_take_bearer = False
        # kind -> the query endpoint that answered for its tasks (``_ask``).
        self._query_at: dict[str, task_kinds.Endpoint] = {}
        # The key prefix Hitem3D's storage took an upload under (``mesh_upload``).
        self.upload_key_prefix = ""
        self._downloads: requests.Session | None = None

    @property
    def downloads(self) -> requests.Session:
        """The session for result files: the same proxy and trust as the API
        calls, but a session of its own, so no API header can reach the file host."""
        with self._lock:
            if self._downloads is None:
                self._downloads = new_session(self.settings.network)
            return self._downloads

    def close(self) -> None:
        self._session.close()
        with self._lock:
            if self._downloads is not None:
                self._downloads.close()

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
        except (_Unauthorized, InvalidCredentials):
            # Said with where the pair came from: preferences or environment.
            raise self.settings.sources.rejected() from None
        token = body.get("accessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServerError(msg("Hitem3D sent no access token: retry in a few minutes"))
        # An issued token is a secret like the credentials: a server message
        # that echoes it is masked wherever it goes.
        register_secret(token)
        with self._lock:
            self._token = token
            self._token_expires = self._clock() + TOKEN_LIFETIME_S - TOKEN_RENEW_MARGIN_S
        return token

    def _current_token(self) -> str:
        with self._lock:
            if self._token and self._clock() < self._token_expires:
                return self._token
        # NOTE: workers starting together would each fetch a token; the first
        # fetches, the others wait (cancellably) and use its token.
        cancel = current_token()
        while not self._token_fetch.acquire(timeout=_TOKEN_WAIT_POLL_S):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
        try:
            with self._lock:
                if self._token and self._clock() < self._token_expires:
                    return self._token
            return self.fetch_token()
        finally:
            self._token_fetch.release()

    def _forget_token(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    # -- calls ---------------------------------------------------------------

    def query_task(self, task_id: str) -> TaskStatus:
        """The task's state now, asked at its kind's endpoint (``_ask``).
        Raises a ``Hitem3DError`` for every failure, ``GenerationFailed``
        included, and ``NotFollowable`` when no path this version knows
        answers for the task."""
        kind = task_kinds.kind_of(task_id)
        try:
            data = self._ask(kind, task_id)
        except GenerationFailed as exc:
            # The refund code: say what to try again with for this kind.
            message = kind.failed_message()
            if exc.code:
                message = msg("{message} (code {code})", message=message, code=exc.code)
            raise GenerationFailed(message, code=exc.code) from None
        if not isinstance(data, dict):
            raise ServerError(msg("Hitem3D sent an unreadable task status: retry in a few minutes"))
        state = str(data.get("state", "")).strip().lower()
        if state not in TASK_STATES:
            raise ApiError(msg("Hitem3D reported an unknown task state: {state}",
                               state=repr(clean_text(state, 40) or "none")))
        if state == "failed":
            raise GenerationFailed(kind.failed_message())
        url = data.get("url")
        cover = data.get("cover_url")
        return TaskStatus(
            task_id=task_id,  # the one asked for: the answer's own is input, and says nothing more
            state=state,
            progress=_progress_of(data),
            model_url=url if isinstance(url, str) and url else None,
            cover_url=cover if isinstance(cover, str) and cover and kind.has_cover else None,
        )

    def _ask(self, kind: task_kinds.TaskKind, task_id: str) -> Any:
        """The ``data`` of the task's answer from where this kind's tasks are answered.

        The kind's own query path first. Not served there (HTTP or code 404),
        or, on a path no official page publishes, not known or not understood
        there: the documented ``/query-task``. Neither knows the task: it was
        created on Hitem3D all the same, so ``NotFollowable``, never a failed
        generation and never "check the API base URL". The path that answered
        is kept for the kind, so the next polls ask once.
        """
        params = {"task_id": task_id}
        with self._lock:
            known = self._query_at.get(kind.id)
        if known is not None:
            return self._call("GET", known.path, auth=known.auth, params=params)
        generic = task_kinds.GENERIC_QUERY
        own = kind.query
        if own.path == generic.path:
            return self._call("GET", own.path, auth=own.auth, params=params)
        guessed = not own.source.confirmed
        try:
            data = self._call("GET", own.path, auth=own.auth, params=params)
            if guessed and not _has_state(data):
                raise _NoTask()
        except Hitem3DError as exc:
            if not _missed(exc, guessed=guessed):
                raise
            log.info("%s: %s does not answer (%s); asking %s", kind.id, own.path, exc, generic.path)
        else:
            with self._lock:
                self._query_at[kind.id] = own
            return data
        try:
            data = self._call("GET", generic.path, auth=generic.auth, params=params)
            if not _has_state(data):
                raise _NoTask()
        except Hitem3DError as exc:
            if not _missed(exc, guessed=True):  # that query-task serves this kind is a guess too
                raise
            log.info("%s: %s does not know %s either (%s)", kind.id, generic.path, task_id, exc)
            raise NotFollowable() from None
        with self._lock:
            self._query_at[kind.id] = generic
        return data

    def balance(self) -> float:
        data = self._call("GET", "/balance")  # Bearer [doc]
        try:
            return float(data["totalBalance"])
        except (KeyError, TypeError, ValueError):
            raise ServerError(msg("Hitem3D sent an unreadable balance: retry in a moment")) from None

    def upload_credentials(self) -> StorageCredentials:
        """Temporary credentials for Hitem3D's object storage (``GET
        /upload/token``), as the vendor's client asks for them before it
        uploads a mesh to texture (``core.mesh_upload``)."""
        data = self._call("GET", "/upload/token")  # Bearer, as the vendor's client sends it
        values = [data.get(name) if isinstance(data, dict) else None
                  for name in ("accessKeyId", "secretAccessKey", "sessionKey")]
        if not all(isinstance(value, str) and value.strip() for value in values):
            raise ServerError(msg("Hitem3D sent incomplete upload credentials: try again in a few minutes"))
        texts = [str(value).strip() for value in values]
        for text in texts:
            register_secret(text)  # masked wherever a server message echoes them
        return StorageCredentials(*texts)

    def submit_task(self, submission: Submission) -> str:
        """Start a generation; returns the new task's ID.

        The request is checked first (``InvalidSubmission``: nothing sent). A
        task to texture (``mesh_task_id``) gets a fresh model URL from
        query-task just before sending: those URLs live one hour. Never
        retried here: a repeated submit could spend credits twice.
        """
        validate(submission)
        if submission.request_type == RequestType.TEXTURE_MESH and submission.mesh and not submission.mesh_url:
            # An artist's own mesh reaches Hitem3D as a link to its storage,
            # never as a file part: ``core.sending.send`` uploads it first.
            raise ValueError("an own mesh is uploaded before submit-task (core.sending.send)")
        if submission.request_type == RequestType.TEXTURE_MESH and not submission.mesh_url:
            status = self.query_task(submission.mesh_task_id)
            if status.state != "success" or not status.model_url:
                raise InvalidSubmission(msg("The task to texture has no finished model on Hitem3D yet"))
            submission = submission.with_mesh_url(status.model_url)
        # Bytes, not open files: the 401 repeat in _call sends the same parts again.
        files = read_files(submission)
        create = task_kinds.IMAGE_TO_3D.create
        data = self._call("POST", create.path, auth=create.auth, data=form_fields(submission), files=files)
        return task_ids.from_server(data.get("task_id") if isinstance(data, dict) else None)

    def submit_kind(self, request: KindRequest) -> str:
        """Create a task of a newer kind (split, depth, …); returns its ID.

        Checked first (``InvalidSubmission``: nothing sent). A finished task as
        the source gets a fresh model link just before sending. Never retried
        here: a repeated create could spend credits twice.
        """
        kind_requests.validate(request)
        spec = request.spec
        assert spec is not None
        if request.source_task_id:
            status = self.query_task(request.source_task_id)
            if status.state != "success" or not status.model_url:
                raise InvalidSubmission(msg("The source task has no finished model on Hitem3D yet"))
            request = replace(request, source_task_id="", source_url=status.model_url)
        # Text fields as file-less parts: the body is multipart even when only
        # a link is sent (``requests`` would otherwise send a urlencoded form).
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in kind_requests.form_fields(request)]
        parts.extend(kind_requests.read_files(request))
        try:
            data = self._call("POST", spec.create.path, auth=spec.create.auth, files=parts)
        except PathNotServed:
            if spec.create.source.confirmed:
                raise
            # A path only third parties name, and it is not there: the guess missed, not the base URL.
            raise ApiError(msg("Hitem3D does not offer {kind} at the path this version knows (HTTP 404): nothing "
                               "was spent; update the extension", kind=spec.title)) from None
        return task_ids.from_server(data.get("task_id") if isinstance(data, dict) else None)

    def scheme_for(self, path: str, documented: Auth = Auth.BEARER) -> Auth:
        """The scheme ``path`` is called with: the one that worked there, else
        ``documented`` (Bearer for a Token page once another Token page took Bearer)."""
        with self._lock:
            if path in self._schemes:
                return self._schemes[path]
            if documented is Auth.TOKEN and self._token_pages_take_bearer:
                return Auth.BEARER
            return documented

    def _call(self, method: str, path: str, *, auth: Auth = Auth.BEARER, **kwargs: Any) -> Any:
        """A call with the access token under ``auth``, the scheme the
        endpoint's page shows (or the one that worked there before).

        On a 401 (HTTP 401 or code 401): a new token once and the same scheme
        (the token may have expired); refused again, the other scheme once
        with that new token (the page may be wrong; it is kept if it works);
        refused a third time, the credentials are blamed. At most three
        requests and one new token, whichever of the two went wrong (or both),
        and never a loop.
        """
        preferred = self.scheme_for(path, auth)
        token = self._current_token()
        forbidden: _Forbidden | None = None
        for scheme, renew in ((preferred, False), (preferred, True), (preferred.other, False)):
            if renew:
                self._forget_token(token)
                token = self._current_token()
            try:
                result = self._send(method, path, headers={"Authorization": f"{scheme.value} {token}"}, **kwargs)
            except _Unauthorized:
                continue
            except _Forbidden as exc:
                forbidden = exc
                continue
            if scheme is not preferred:
                log.info("%s takes the %s scheme, not %s: kept for this session", path, scheme.value, preferred.value)
                with self._lock:
                    self._schemes[path] = scheme
                    if auth is Auth.TOKEN and scheme is Auth.BEARER:
                        self._token_pages_take_bearer = True
            return result
        self._forget_token(token)
        if forbidden is not None:
            # Not the credentials for sure: the token was issued for them. Nothing was made.
            raise ApiError(msg("Hitem3D refused this request (HTTP 403: {message}): check on the Hitem3D platform "
                               "that your key may use it", message=forbidden.said or "Forbidden"), code="403")
        raise _TokenRefused(msg("Hitem3D did not accept a fresh access token: check your credentials"))

    def _send(self, method: str, path: str, *, headers: Mapping[str, str], **kwargs: Any) -> Any:
        """One request; returns ``data`` of a success answer or raises. A
        failure to reach the API says where its address came from, when that
        is not the preferences' field (``settings.Sources.about_base_url``)."""
        try:
            return self._send_once(method, path, headers=headers, **kwargs)
        except (NetworkError, PathNotServed) as exc:
            exc.reword(self.settings.sources.about_base_url(exc.message))
            raise

    def _send_once(self, method: str, path: str, *, headers: Mapping[str, str], **kwargs: Any) -> Any:
        url = self.settings.base_url + API_PREFIX + path
        token = current_token()
        try:
            # Streamed so the running job's cancel token can abort a slow body too.
            response = self._session.request(
                method, url, headers=dict(headers), timeout=self.settings.request_timeout_s,
                stream=True, **kwargs
            )
        except requests.RequestException as exc:
            if token is not None and token.cancelled:
                raise Cancelled() from None
            raise redirect_error(exc) or network_error(exc, self.host) from None
        if token is not None:
            token.track(response)
        try:
            with response:
                status = response.status_code
                if status == 401:
                    raise _Unauthorized()
                if status == 407:
                    raise proxy_auth_error(self.host)
                if status == 429 or status >= 500:
                    raise ServerError(
                        msg("Hitem3D is unavailable (HTTP {status}): retry in a few minutes", status=status),
                        retry_after=_retry_after(response),
                    )
                body = _json_body(response, token, self.host)
                # 405: the path exists for another method only; not an API either.
                if status in (404, 405) and (not isinstance(body, dict) or _code_of(body) in ("", "404", "405")):
                    raise PathNotServed(msg("{host} has no Hitem3D API here (HTTP {status}): check the API base URL",
                                            host=self.host, status=status))
                if status == 403 and (not isinstance(body, dict) or _code_of(body) in ("", "403")):
                    raise _Forbidden(_message_of(body) if isinstance(body, dict) else "")
                if not isinstance(body, dict):
                    raise ServerError(msg("Hitem3D sent an unreadable answer (HTTP {status}): retry in a few minutes",
                                         status=status))
        finally:
            if token is not None:
                token.untrack(response)
        code = _code_of(body)
        if code == errors.CODE_UNAUTHORIZED:
            raise _Unauthorized()
        if code == "404":  # the answer of an unknown route, in a body
            raise PathNotServed(msg("{host} has no Hitem3D API here (HTTP {status}): check the API base URL",
                                    host=self.host, status=404))
        if code == "" and status == 200 and isinstance(body.get("data"), dict):
            # Every documented answer has a code; one without, with HTTP 200
            # and its data, is read as the success it says it is.
            return body["data"]
        if code != "200":
            raise error_for_code(code, _message_of(body))
        return body.get("data")


def _json_body(response: requests.Response, token: CancelToken | None, host: str) -> Any:
    """The answer's JSON, or None when it is not JSON. Reads at most
    MAX_ANSWER_BYTES: an API answer is small, anything bigger is not ours."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                return None
            chunks.append(chunk)
    except requests.RequestException as exc:
        if token is not None and token.cancelled:
            raise Cancelled() from None
        raise network_error(exc, host) from None
    try:
        return json.loads(b"".join(chunks).decode(response.encoding or "utf-8", errors="replace"))
    except ValueError:
        return None
