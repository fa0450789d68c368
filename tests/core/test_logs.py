"""Redaction of secrets in log output."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from hitem3d_blender.core.logs import MASK, RedactingFilter, install_console_handler, redact, register_secret


def unique_secret() -> str:
    # The registry is process-wide: every test registers its own value.
    return f"sec-{uuid.uuid4().hex}"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"hitem3d_test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_registered_secret_is_masked() -> None:
    secret = unique_secret()
    register_secret(secret)
    assert redact(f"client secret is {secret}, again {secret}!") == f"client secret is {MASK}, again {MASK}!"


def test_unregistered_text_is_left_alone() -> None:
    text = "Task 2c2ad20c queueing (attempt 2 of 6)"
    assert redact(text) == text


def test_very_short_secret_is_not_registered() -> None:
    register_secret("ab")
    register_secret("")
    assert redact("a tab and a crab") == "a tab and a crab"


def test_longer_secret_masked_before_a_shorter_one_inside_it() -> None:
    short = unique_secret()
    long = short + "-extended"
    register_secret(short)
    register_secret(long)
    result = redact(f"value={long}")
    assert short not in result and "extended" not in result


def test_bearer_value_is_masked() -> None:
    assert redact("Authorization: Bearer eyJhbGciOi.J9-x_y~z+/=") == f"Authorization: Bearer {MASK}"


def test_basic_value_is_masked() -> None:
    assert redact("headers={'Authorization': 'Basic bXk6c2VjcmV0MTIz=='}") == (
        f"headers={{'Authorization': 'Basic {MASK}'}}"
    )


def test_lower_case_bearer_is_masked() -> None:
    assert "abc123token" not in redact("authorization: bearer abc123token")


def test_auth_key_in_a_url_is_masked_and_the_rest_kept() -> None:
    url = "https://cdn.example/target//original/0.glb?auth_key=1700000000-ab12-0-ffee00&v=2"
    result = redact(f"GET {url} -> 403")
    assert "1700000000-ab12-0-ffee00" not in result
    assert result == f"GET https://cdn.example/target//original/0.glb?auth_key={MASK}&v=2 -> 403"


@pytest.mark.parametrize(
    "field",
    ["accessToken", "access_token", "token", "client_secret", "AccessToken"],
)
def test_token_like_json_field_is_masked(field: str) -> None:
    body = json.dumps({"code": 200, "data": {field: "tok-VALUE-123", "tokenType": "Bearer"}})
    result = redact(body)
    assert "tok-VALUE-123" not in result
    assert f'"{field}": "{MASK}"' in result


def test_token_in_key_value_text_is_masked() -> None:
    assert "tok-VALUE-123" not in redact("token=tok-VALUE-123 expires=3600")


def test_filter_masks_a_logged_message_with_arguments(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    secret = unique_secret()
    register_secret(secret)
    logger.info("Using secret %s and %s", secret, "Bearer live-token-xyz")
    output = stream.getvalue()
    assert secret not in output
    assert "live-token-xyz" not in output
    assert output == f"INFO Using secret {MASK} and Bearer {MASK}\n"


def test_filter_masks_exception_text(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    secret = unique_secret()
    register_secret(secret)
    try:
        raise RuntimeError(f"request failed: https://cdn.example/0.glb?auth_key=KEY123 with {secret}")
    except RuntimeError:
        logger.exception("Download failed")
    output = stream.getvalue()
    assert "Download failed" in output
    assert "RuntimeError" in output and "Traceback" in output
    assert secret not in output
    assert "KEY123" not in output


def test_filter_keeps_the_record(captured: tuple[logging.Logger, io.StringIO]) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %d", (5,), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "value 5"


def test_console_handler_prints_warnings_redacted_and_stops_propagation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger(f"hitem3d_test.{uuid.uuid4().hex}")
    handler = install_console_handler(logger)
    try:
        secret = unique_secret()
        register_secret(secret)
        logger.info("quiet detail")
        logger.warning("Token request failed with %s", secret)
        err = capsys.readouterr().err
        assert err == f"Hitem3D WARNING: Token request failed with {MASK}\n"
        assert logger.propagate is False
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    finally:
        logger.removeHandler(handler)


def test_console_handler_writes_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A host that swaps sys.stderr and closes the old stream must not turn
    # warnings into "--- Logging error ---".
    logger = logging.getLogger(f"hitem3d_test.{uuid.uuid4().hex}")
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    handler = install_console_handler(logger)
    try:
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        first.close()
        logger.warning("after the swap")
        assert second.getvalue() == "Hitem3D WARNING: after the swap\n"
    finally:
        logger.removeHandler(handler)
