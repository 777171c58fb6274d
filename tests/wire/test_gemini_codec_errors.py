"""Error decoding of the Gemini codec: recorded error bodies -> the canonical error tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrelay.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamAuthError,
    UpstreamError,
)
from llmrelay.wire.gemini import decode_error

PAYLOADS = Path(__file__).parent / "payloads" / "gemini"
NOW = 1_700_000_000.0


def _decode(status: int, name: str, headers: dict[str, str] | None = None) -> RelayError:
    body = (PAYLOADS / name).read_bytes()
    return decode_error(status, headers or {}, body, provider="gemini", now=NOW)


@pytest.mark.parametrize(
    ("status", "name", "kind", "canonical_status"),
    [
        (429, "error_resource_exhausted.json", RateLimited, 429),
        (400, "error_api_key_invalid.json", UpstreamAuthError, 502),
        (401, "error_unauthenticated.json", UpstreamAuthError, 502),
        (403, "error_permission_denied.json", UpstreamAuthError, 502),
        (400, "error_invalid_argument.json", InvalidRequest, 400),
        (400, "error_token_limit.json", ContextLengthExceeded, 400),
        (404, "error_not_found.json", NotFound, 404),
        (503, "error_unavailable.json", Overloaded, 503),
        (500, "error_internal.json", UpstreamError, 500),
        (504, "error_deadline_exceeded.json", Timeout, 504),
    ],
)
def test_each_recorded_error_maps_to_its_class(
    status: int, name: str, kind: type[RelayError], canonical_status: int
) -> None:
    error = _decode(status, name)
    assert type(error) is kind
    assert error.status == canonical_status
    assert error.provider == "gemini"


def test_plain_invalid_argument_is_not_a_context_length_error() -> None:
    assert not isinstance(_decode(400, "error_invalid_argument.json"), ContextLengthExceeded)


def test_retry_info_sets_retry_after_and_wins_over_the_header() -> None:
    error = _decode(429, "error_resource_exhausted.json", {"retry-after": "99"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 15.0


def test_retry_after_header_is_used_without_retry_info() -> None:
    error = _decode(429, "error_resource_exhausted_plain.json", {"retry-after": "7"})
    assert error.retry_after == 7.0
    assert _decode(429, "error_resource_exhausted_plain.json").retry_after is None


@pytest.mark.parametrize(
    ("delay", "expected"), [("1.5s", 1.5), ("0s", 0.0), ("soon", None), ("-3s", None), (5, None)]
)
def test_retry_delay_formats(delay: object, expected: float | None) -> None:
    body = (
        '{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down",'
        ' "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": '
        + (f'"{delay}"' if isinstance(delay, str) else str(delay))
        + "}]}}"
    )
    error = decode_error(429, {}, body.encode(), now=NOW)
    assert isinstance(error, RateLimited)
    assert error.retry_after == expected


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "error_api_key_invalid.json"),
        (401, "error_unauthenticated.json"),
        (403, "error_permission_denied.json"),
    ],
)
def test_credential_errors_use_a_fixed_message(status: int, name: str) -> None:
    upstream_message = json.loads((PAYLOADS / name).read_bytes())["error"]["message"]
    error = _decode(status, name)
    assert upstream_message not in error.message
    assert error.message.startswith("gemini ")
    assert "credentials" in error.message
    assert f"{status})" in error.message


def test_upstream_message_is_kept_for_other_errors() -> None:
    error = _decode(404, "error_not_found.json")
    assert "models/gemini-0.9-ultra is not found" in error.message


def test_list_wrapped_error_body() -> None:
    body = b'[{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}]'
    error = decode_error(503, {}, body, now=NOW)
    assert type(error) is UpstreamError
    assert error.message == "gemini: busy"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(502, UpstreamError), (429, RateLimited), (404, NotFound), (413, PayloadTooLarge)],
)
def test_non_json_bodies_map_by_http_status(status: int, kind: type[RelayError]) -> None:
    error = decode_error(status, {"content-type": "text/html"}, b"<html>Bad Gateway</html>", now=NOW)
    assert isinstance(error, kind)
    assert error.message == f"gemini: upstream returned {status} (text/html, 24 B)"
