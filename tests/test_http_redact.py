"""Log redaction: registered secrets and auth-header values never reach a log record."""

from __future__ import annotations

import logging

import httpx
import pytest

from kling_core.http.redact import (
    MASK,
    RedactingFilter,
    install_redaction,
    redact_headers,
    redact_url,
    register_secret,
    scrub,
)

SECRET = "sk-CANARY-redact-0000-1111"


@pytest.mark.parametrize(
    "text",
    [
        "headers={'authorization': 'Key abc:def123'}",
        "Authorization: Bearer eyJhbGciOi.payload.sig",
        "{'x-api-key': 'SG_fake567890abcdef'}",
        "[(b'x-api-key', b'SG_fake567890abcdef')]",
        "X-Key=topsecretvalue",
        "cookie: session=abcdef",
    ],
)
def test_auth_header_values_are_masked_whatever_the_format(text: str) -> None:
    out = scrub(text)
    assert MASK in out
    for token in ("abc:def123", "eyJhbGciOi", "SG_fake567890abcdef", "topsecretvalue", "session=abcdef"):
        assert token not in out


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret(SECRET)
    assert SECRET not in scrub(f"the body said {SECRET}!")
    assert scrub("nothing secret here") == "nothing secret here"
    register_secret("abc")  # too short to register safely: would mask ordinary words
    assert scrub("abc") == "abc"


def test_redact_headers_and_urls() -> None:
    headers = httpx.Headers({"Authorization": "Key k", "X-Api-Key": "k2", "Content-Type": "application/json"})
    assert redact_headers(headers) == {"authorization": MASK, "x-api-key": MASK, "content-type": "application/json"}
    url = redact_url("https://user:pw@queue.fal.run/x?fal_webhook=https://h/x?t=1&logs=1&token=abc")
    assert "pw" not in url and "token=abc" not in url and "logs=1" in url and "h%2Fx" not in url


def test_filter_rewrites_message_args_and_exceptions() -> None:
    register_secret(SECRET)
    f = RedactingFilter()
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "sent %s with %r", (SECRET, {"x-api-key": "zzz"}), None)
    assert f.filter(record)
    assert SECRET not in record.getMessage() and "zzz" not in record.getMessage()
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("kling_core.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    f.filter(record)
    assert record.exc_text is not None and SECRET not in record.exc_text and "boom" in record.exc_text


def test_install_covers_children_and_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(SECRET)
    child = logging.getLogger("kling_core.http.some_child_for_test")
    install_redaction()
    install_redaction()
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection", "kling_core", child.name):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]
        assert len(filters) == 1, name
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpcore.http11").debug("headers %s", [(b"x-api-key", SECRET.encode())])
        child.info("key=%s", SECRET)
    assert caplog.records and SECRET not in caplog.text
