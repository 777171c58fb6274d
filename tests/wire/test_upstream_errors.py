"""Every provider codec applies the same upstream-text rule: scrub, summarise, cap, read hints.

One table over the three codecs (openai, anthropic, gemini), unary replies and error events inside
a 200 stream, so the codecs cannot drift apart again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from llmrelay.classify import Verdict, classify
from llmrelay.errors import RelayError, UpstreamAuthError, UpstreamError
from llmrelay.wire import anthropic_errors, gemini_errors, openai_errors
from llmrelay.wire.anthropic_stream import AnthropicStreamDecoder
from llmrelay.wire.gemini_stream import GeminiStreamDecoder
from llmrelay.wire.openai_stream import ChatStreamDecoder
from llmrelay.wire.upstream_text import MAX_MESSAGE, NO_CREDENTIALS, Credentials

NOW = 1_700_000_000.0
CONFIGURED = "plain-configured-credential-7f3a"  # shaped like nothing: only the credential set finds it
SHAPED = "sk-upstream-SECRET"  # the example: caught by shape even when not configured
CODECS = ["openai", "anthropic", "gemini"]


def error_body(codec: str, message: Any, *, status: int = 500, nested: str | None = None) -> bytes:
    """The codec's own error shape carrying ``message`` (and ``nested`` deeper inside)."""
    if codec == "openai":
        error: dict[str, Any] = {"message": message, "type": "server_error", "code": None}
        if nested is not None:
            error["message"] = {"text": message, "echo": {"authorization": f"Bearer {nested}"}}
            error["param"] = nested
        return json.dumps({"error": error}).encode()
    if codec == "anthropic":
        kind = "authentication_error" if status == 401 else "api_error"
        inner: dict[str, Any] = {"type": kind, "message": message}
        if nested is not None:
            inner["details"] = {"x-api-key": nested}
        return json.dumps({"type": "error", "error": inner}).encode()
    status_name = "UNAUTHENTICATED" if status == 401 else "INTERNAL"
    google: dict[str, Any] = {"code": status, "status": status_name, "message": message}
    if nested is not None:
        google["details"] = [{"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": nested}]
    return json.dumps({"error": google}).encode()


def decode(
    codec: str,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    credentials: Credentials = NO_CREDENTIALS,
) -> RelayError:
    decoders: dict[str, Callable[..., RelayError]] = {
        "openai": openai_errors.decode_error,
        "anthropic": anthropic_errors.decode_error,
        "gemini": gemini_errors.decode_error,
    }
    return decoders[codec](status, headers or {}, body, provider=codec, now=NOW, credentials=credentials)


def stream_error(codec: str, message: str, *, status: int = 500, nested: str | None = None) -> RelayError:
    """The error an error event inside a 200 stream raises from the codec's stream decoder.

    The event carries the same error object as the codec's unary error body.
    """
    data = error_body(codec, message, status=status, nested=nested).decode()
    with pytest.raises(RelayError) as info:
        if codec == "openai":
            ChatStreamDecoder().feed(data)
        elif codec == "anthropic":
            AnthropicStreamDecoder().feed("error", data)
        else:
            GeminiStreamDecoder(model="gemini-2.5-flash").feed(data)
    return info.value


def leaked(err: RelayError, secret: str) -> bool:
    return any(secret in text for text in (err.message, str(err), repr(err), err.param or ""))


SECRETS = [
    pytest.param(Credentials.of([CONFIGURED]), CONFIGURED, id="configured"),
    pytest.param(NO_CREDENTIALS, SHAPED, id="shaped"),
]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("credentials", "secret"), SECRETS)
def test_unary_message_is_scrubbed(codec: str, credentials: Credentials, secret: str) -> None:
    body = error_body(codec, f"upstream boom, your key was Bearer {secret}")
    err = decode(codec, 500, body, credentials=credentials)
    assert isinstance(err, UpstreamError)
    assert not leaked(err, secret)
    assert "upstream boom, your key was Bearer [redacted]" in err.message


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("credentials", "secret"), SECRETS)
def test_unary_nested_field_is_scrubbed(codec: str, credentials: Credentials, secret: str) -> None:
    err = decode(codec, 500, error_body(codec, "upstream boom", nested=secret), credentials=credentials)
    assert not leaked(err, secret)
    assert "upstream boom" in err.message


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("credentials", "secret"), SECRETS)
def test_non_json_body_is_summarised_never_quoted(codec: str, credentials: Credentials, secret: str) -> None:
    page = f"<html><body><h1>502 Bad Gateway</h1><pre>Authorization: {secret}</pre>".encode()
    page = page.ljust(1229, b" ") + b"</body></html>"
    err = decode(codec, 502, page, {"Content-Type": "text/html; charset=utf-8"}, credentials)
    assert not leaked(err, secret)
    assert "Bad Gateway" not in err.message
    assert "upstream returned 502 (text/html, 1.2 KB)" in err.message
    assert classify(err) == Verdict(retry=True, failover=True, breaker_failure=True)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "secret",
    [
        SHAPED,
        "sk-ant-api03-AbCdEf0123456789_xyz",
        "sk-proj-********************abcd",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
        "key=0123456789abcdef0123456789abcdef",
    ],
)
def test_stream_error_event_is_scrubbed(codec: str, secret: str) -> None:
    err = stream_error(codec, f"stream boom: {secret} was refused")
    assert not leaked(err, secret)
    assert "stream boom" in err.message and "[redacted]" in err.message


@pytest.mark.parametrize("codec", CODECS)
def test_stream_error_event_nested_field_is_scrubbed(codec: str) -> None:
    err = stream_error(codec, "stream boom", nested=SHAPED)
    assert not leaked(err, SHAPED)
    assert "stream boom" in err.message


@pytest.mark.parametrize("codec", CODECS)
def test_one_cap_for_every_codec_unary_and_streamed(codec: str) -> None:
    long = "word " * 2000
    for err in (decode(codec, 500, error_body(codec, long)), stream_error(codec, long)):
        assert MAX_MESSAGE - 10 <= len(err.message) <= MAX_MESSAGE + len(codec) + 4
        assert err.message.endswith("…")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-should-retry": "true"}, True),
        ({"x-should-retry": "false"}, False),
        ({"X-Should-Retry": " TRUE "}, True),
        ({"x-should-retry": "False\t"}, False),
        ({"x-should-retry": "maybe"}, None),
        ({}, None),
    ],
)
def test_x_should_retry_reads_the_same_everywhere(
    codec: str, headers: dict[str, str], expected: bool | None
) -> None:
    assert decode(codec, 500, error_body(codec, "boom"), headers).should_retry is expected


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("status", [401, 403])
def test_upstream_rejecting_our_key_is_an_upstream_auth_error(codec: str, status: int) -> None:
    body = error_body(codec, f"Incorrect API key provided: {SHAPED}", status=status)
    err = decode(codec, status, body)
    assert type(err) is UpstreamAuthError
    assert (err.status, err.code, err.provider) == (502, "upstream_auth_error", codec)
    assert err.upstream_status == status and f"{status})" in err.message
    assert not leaked(err, SHAPED)
    assert classify(err) == Verdict(retry=False, failover=True, breaker_failure=True)


@pytest.mark.parametrize("codec", ["anthropic", "gemini"])
def test_auth_error_event_inside_a_stream_is_an_upstream_auth_error(codec: str) -> None:
    err = stream_error(codec, "invalid x-api-key", status=401)
    assert type(err) is UpstreamAuthError
    assert classify(err).failover and classify(err).breaker_failure
