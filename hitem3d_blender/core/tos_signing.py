"""Requests to Volcengine TOS object storage, signed with ``TOS4-HMAC-SHA256``.

Hitem3D takes an artist's own mesh for texturing as a link to its object
storage (TOS); the upload is signed with the temporary credentials that
``GET /open-api/v1/upload/token`` hands out. Volcengine's SDK (``tos`` on
PyPI) would do this, but the add-on ships only what Blender bundles, so the
scheme is written out here and checked against that SDK in the tests
(``tests/core/test_tos_signing.py``).

The scheme, as the SDK's ``tos/auth.py`` implements it (AWS SigV4 with other
names):

- canonical request: the method, the path percent-encoded except ``/`` and
  ``~``, the query sorted by name (each name and value encoded except
  ``-_.~``), one ``name:value`` line per signed header, the signed header
  names joined by ``;``, and the payload hash: the ``x-tos-content-sha256``
  header, or ``UNSIGNED-PAYLOAD`` without one;
- signed headers: ``host``, ``content-type`` and every ``x-tos-*`` header,
  names in lower case, sorted;
- string to sign: the algorithm, the date (``20260102T030405Z``, UTC), the
  scope ``<yyyymmdd>/<region>/tos/request`` and the canonical request's
  SHA-256, one a line;
- key: HMAC-SHA256 chained over the day, the region, ``tos`` and
  ``request``, starting from the secret key;
- ``Authorization: TOS4-HMAC-SHA256 Credential=<key id>/<scope>,
  SignedHeaders=<names>, Signature=<hex>``, the temporary token in
  ``x-tos-security-token``.

No ``bpy``, no network: plain functions of plain values.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import quote

ALGORITHM = "TOS4-HMAC-SHA256"
SERVICE = "tos"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
HEADER_PREFIX = "x-tos-"
CONTENT_SHA256 = "x-tos-content-sha256"
SECURITY_TOKEN = "x-tos-security-token"
DATE_HEADER = "x-tos-date"
# Never signed: a signature over itself (query signing names it so).
_SIGNATURE_PARAMETER = "x-tos-signature"


@dataclass(frozen=True)
class StorageCredentials:
    """Temporary credentials for the storage, as ``upload/token`` gives them.
    The secret parts stay out of ``repr``: a log line never shows them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    security_token: str = field(repr=False)


def signing_time(when: datetime) -> str:
    """``20260102T030405Z``: the request's time in UTC, to the second."""
    if when.tzinfo is None:
        raise ValueError("a signing time must be timezone-aware")
    return when.astimezone(timezone.utc).strftime(DATE_FORMAT)


def canonical_uri(path: str) -> str:
    return quote(path or "/", safe="/~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{quote(name, safe='-_.~')}={quote(str(params[name]), safe='-_.~')}"
                    for name in sorted(params) if name.lower() != _SIGNATURE_PARAMETER)


def is_signed(name: str) -> bool:
    lower = name.lower()
    return lower in ("host", "content-type") or lower.startswith("x-tos")


def signed_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """(lower-case name, value) of every header the signature covers, sorted."""
    return sorted((name.lower(), str(value)) for name, value in headers.items() if is_signed(name))


def payload_hash(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == CONTENT_SHA256 and value:
            return str(value)
    return UNSIGNED_PAYLOAD


def canonical_request(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    covered = signed_headers(headers)
    return "\n".join([
        method.upper(),
        canonical_uri(path),
        canonical_query(params),
        "".join(f"{name}:{value}\n" for name, value in covered),
        ";".join(name for name, _ in covered),
        payload_hash(headers),
    ])


def credential_scope(date: str, region: str) -> str:
    return f"{date[:8]}/{region}/{SERVICE}/request"


def string_to_sign(canonical: str, date: str, region: str) -> str:
    return "\n".join([ALGORITHM, date, credential_scope(date, region),
                      hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str) -> bytes:
    key = _hmac(secret_access_key.encode("utf-8"), date[:8])
    for part in (region, SERVICE, "request"):
        key = _hmac(key, part)
    return key


def signature(secret_access_key: str, canonical: str, date: str, region: str) -> str:
    key = signing_key(secret_access_key, date, region)
    return hmac.new(key, string_to_sign(canonical, date, region).encode("utf-8"), hashlib.sha256).hexdigest()


def sign(method: str, path: str, params: Mapping[str, str], headers: Mapping[str, str],
         credentials: StorageCredentials, region: str, when: datetime) -> dict[str, str]:
    """``headers`` with the date, the temporary token and ``Authorization``
    added: what to send. ``headers`` must already hold ``Host`` exactly as it
    will be sent (and ``x-tos-content-sha256`` for a signed payload)."""
    if not any(name.lower() == "host" for name in headers):
        raise ValueError("the Host header is signed: set it before signing")
    date = signing_time(when)
    sent = {name: value for name, value in headers.items()
            if name.lower() not in (DATE_HEADER, SECURITY_TOKEN, "authorization")}
    sent[DATE_HEADER] = date
    if credentials.security_token:
        sent[SECURITY_TOKEN] = credentials.security_token
    canonical = canonical_request(method, path, params, sent)
    names = ";".join(name for name, _ in signed_headers(sent))
    value = signature(credentials.secret_access_key, canonical, date, region)
    sent["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{credential_scope(date, region)}, "
                             f"SignedHeaders={names}, Signature={value}")
    return sent
