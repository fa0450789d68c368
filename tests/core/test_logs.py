"""Redaction of secrets in log output."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

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


# -- encoded echoes and invisible characters (issue 21.9) ----------------------------------------


def test_a_secret_echoed_in_base64_at_any_alignment_is_masked() -> None:
    import base64

    secret = unique_secret()
    register_secret(secret)
    for prefix in (b"", b"a", b"ab", b"abc"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            echoed = encode(prefix + secret.encode()).decode()
            masked = redact(f"the server said: {echoed}")
            assert MASK in masked, (prefix, echoed)
            # What is left can no longer be decoded into the secret.
            assert secret[2:-2] not in base64.b64decode(masked.split()[-1].replace(MASK, "") + "===",
                                                        altchars=b"-_" if encode is base64.urlsafe_b64encode
                                                        else None).decode("latin-1")


def test_the_basic_headers_base64_of_id_and_secret_is_masked() -> None:
    import base64

    secret = unique_secret()
    register_secret(secret)
    value = base64.b64encode(f"my-client-id:{secret}".encode()).decode()
    masked = redact(f"rejected credentials {value}")
    assert value not in masked and MASK in masked
    visible = masked.split()[-1].replace(MASK, "")
    assert len(visible) <= len(base64.b64encode(b"my-client-id:")) + 3  # only the ID's part is left


def test_a_secret_echoed_percent_encoded_or_in_hex_is_masked() -> None:
    from urllib.parse import quote, quote_plus

    secret = unique_secret() + "/+= &!"
    register_secret(secret)
    for echoed in (quote(secret, safe=""), quote_plus(secret), quote(secret, safe="").lower(),
                   secret.encode().hex(), secret.encode().hex().upper()):
        assert redact(f"echo: {echoed}.") == f"echo: {MASK}.", echoed


@pytest.mark.parametrize("invisible", ["\u061c", "\U000e0041", "\U000e007f", "\U000e0001", "\u202e", "\u2066",
                                       "\u200e", "\u2028", "\u2029", "\u00ad", "\u2060", "\ufff9", "\ue000",
                                       "\x1b[31m", "\x9b31m", "\x07"])
def test_invisible_and_direction_changing_characters_are_removed(invisible: str) -> None:
    from hitem3d_blender.core.logs import clean_text

    assert clean_text(f"Model{invisible}failed") in ("Model failed", "Modelfailed")
    assert invisible not in clean_text(f"Model{invisible}failed")


def test_other_programs_output_is_cleaned_line_by_line() -> None:
    from hitem3d_blender.core.logs import clean_lines

    printed = "12:00 | INFO: Blender create Mesh node M\x1b[2J\x1b]0;pwned\x07\nsecond \u202eline\n"
    assert clean_lines(printed) == "12:00 | INFO: Blender create Mesh node M\nsecond line"


def test_a_failed_converters_output_reaches_the_log_cleaned(tmp_path: Path) -> None:
    from hitem3d_blender.core.conversion import ConversionProcess, Limits
    from tests.core.test_conversion import spec_in

    log_path = tmp_path / "task.converter.log"
    log_path.write_bytes(b"INFO: Blender create Mesh node M\x1b[2J\x1b]0;pwned\x07\nTraceback \xe2\x80\xaeevil\n")
    process = ConversionProcess(spec_in(tmp_path), tmp_path / "spec.json", ["true"], {}, Limits(), log_path)
    tail = process._output_tail()
    assert tail == "INFO: Blender create Mesh node M\nTraceback evil"
