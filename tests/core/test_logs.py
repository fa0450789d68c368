"""Redaction of secrets in log output."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any
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


# -- the log file: cheap on Blender's main thread ------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[tuple[logging.Logger, Path, logging.Handler]]:
    from hitem3d_blender.core.logs import install_file_handler

    logger = logging.getLogger(f"hitem3d_test.{uuid.uuid4().hex}")
    logger.propagate = False
    path = tmp_path / "hitem3d.log"
    handler = install_file_handler(logger, path, max_bytes=2000, backups=2)
    yield logger, path, handler
    logger.removeHandler(handler)
    handler.close()


def lines_of(path: Path) -> list[str]:
    return [line.split(": ", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_lines_of_a_timer_call_wait_for_a_quiet_call_in_order(log_file: Any) -> None:
    from hitem3d_blender.core import logs

    logger, path, _ = log_file
    logger.info("before")
    with logs.held_writes():
        logger.info("held %s", 1)
        logger.info("held %s", 2)
    assert lines_of(path) == ["before"]  # a busy call wrote nothing
    logs.write_held(until=0.0)
    assert lines_of(path) == ["before"]  # no time left in this call, and not waited long
    logs.write_held(until=float("inf"))
    assert lines_of(path) == ["before", "held 1", "held 2"]


def test_a_warning_is_written_at_once_after_the_lines_waiting(log_file: Any) -> None:
    from hitem3d_blender.core import logs

    logger, path, _ = log_file
    with logs.held_writes():
        logger.info("first")
        logger.warning("then a warning")
        logger.info("after")
        assert lines_of(path) == ["first", "then a warning"]
    logs.write_held(until=float("inf"))
    assert lines_of(path) == ["first", "then a warning", "after"]


def test_lines_never_wait_longer_than_the_hold_or_past_the_disable(log_file: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hitem3d_blender.core import logs

    logger, path, handler = log_file
    with logs.held_writes():
        logger.info("old 1")
        logger.info("old 2")
    monkeypatch.setattr(logs.time, "time", lambda: 1e12)
    logs.write_held(until=0.0)
    assert lines_of(path) == ["old 1"]  # one a call, however busy, once they waited too long
    logs.write_held(until=0.0, final=True)
    assert lines_of(path) == ["old 1", "old 2"]  # the timer's last call
    with logs.held_writes():
        logger.info("at the end")
    handler.close()  # disabling the add-on, quitting
    assert lines_of(path)[-1] == "at the end"


def test_lines_of_other_threads_are_written_at_once(log_file: Any) -> None:
    import threading

    from hitem3d_blender.core import logs

    logger, path, _ = log_file
    with logs.held_writes():
        thread = threading.Thread(target=lambda: logger.info("from a thread"))
        thread.start()
        thread.join()
        assert lines_of(path) == ["from a thread"]


def test_the_log_file_rolls_over_at_its_size_counted_not_stat_per_line(log_file: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    logger, path, _ = log_file
    logger.info("x" * 10)  # opens the file and reads its size once
    calls: list[str] = []
    real_stat = os.stat

    def counted_stat(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        return real_stat(*args, **kwargs)

    monkeypatch.setattr(os, "stat", counted_stat)
    for number in range(60):
        logger.info("line %02d %s", number, "y" * 40)
    monkeypatch.undo()
    backups = sorted(p.name for p in path.parent.iterdir() if p.name.startswith("hitem3d.log."))
    assert backups == ["hitem3d.log.1", "hitem3d.log.2"]
    assert all(p.stat().st_size <= 2000 + 100 for p in path.parent.iterdir())
    assert lines_of(path)[-1].startswith("line 59")
    assert len([c for c in calls if c == str(path)]) <= 6  # at each rollover only, never per line


def test_a_log_file_that_was_there_keeps_growing_from_its_size(tmp_path: Path) -> None:
    from hitem3d_blender.core.logs import install_file_handler

    path = tmp_path / "hitem3d.log"
    path.write_text("z" * 1990 + "\n")
    logger = logging.getLogger(f"hitem3d_test.{uuid.uuid4().hex}")
    logger.propagate = False
    handler = install_file_handler(logger, path, max_bytes=2000, backups=1)
    try:
        logger.info("this line passes the limit")
    finally:
        handler.close()
    assert (tmp_path / "hitem3d.log.1").read_text().startswith("z")
    assert lines_of(path) == ["this line passes the limit"]
