"""The upstream-text rule on its own: what is a credential, how text is scrubbed, capped, summarised."""

from __future__ import annotations

import pytest

from llmrelay.errors import UpstreamError
from llmrelay.wire.upstream_text import (
    MAX_MESSAGE,
    NO_CREDENTIALS,
    REDACTED,
    Credentials,
    clean,
    summarise,
)


def test_credential_set_of_a_target() -> None:
    creds = Credentials.of(
        ["the-api-key-value", "Bearer header-token-value", "x1", None],
        base_url="http://relayuser:p%40ssw0rd@proxy.internal:8080/v1",
    )
    for secret in (
        "the-api-key-value",
        "Bearer header-token-value",
        "header-token-value",
        "relayuser:p%40ssw0rd",
        "p%40ssw0rd",
        "p@ssw0rd",
        "relayuser",
    ):
        assert secret in creds.values
    assert "x1" not in creds.values  # too short to be anyone's secret; scrubbing it mangles text
    assert "header-token-value" not in repr(creds)
    scrubbed = creds.scrub("sent header-token-value and p@ssw0rd as the-api-key-value")
    assert scrubbed == f"sent {REDACTED} and {REDACTED} as {REDACTED}"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    creds = Credentials.of(["abcd", "abcdefgh-longer"])
    assert creds.scrub("x abcdefgh-longer y abcd") == f"x {REDACTED} y {REDACTED}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("your key was Bearer sk-upstream-SECRET", f"your key was Bearer {REDACTED}"),
        ("auth Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"auth Bearer {REDACTED}"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {REDACTED}"),
        ("Incorrect API key provided: sk-proj-****abcd.", f"Incorrect API key provided: {REDACTED}."),
        ("bad sk-ant-api03-AbC_dEf-0123456789", f"bad {REDACTED}"),
        ("key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW rejected", f"key {REDACTED} rejected"),
        ("GET /v1?key=0123456789abcdef0123456789abcdef&x=1", f"GET /v1?key={REDACTED}&x=1"),
        ('{"api_key": "QUJDREVGR0hJSktMTU5PUFFSU1Q="}', f'{{"api_key": "{REDACTED}"}}'),
        ("access_token=ya29.a0AfH6SMBx-long-token", f"access_token={REDACTED}"),
        ("proxy http://admin:hunter2@10.0.0.1/ failed", f"proxy http://{REDACTED}@10.0.0.1/ failed"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc", f"jwt {REDACTED}"),
        # Prose that only looks close stays readable.
        ("missing bearer token; basic information about the task-specific key", None),
        ("Missing key: messages", None),
        ("This model's maximum context length is 4096 tokens", None),
    ],
)
def test_credential_shapes_are_scrubbed(text: str, expected: str | None) -> None:
    assert NO_CREDENTIALS.scrub(text) == (text if expected is None else expected)


def test_clean_caps_at_a_word_boundary_after_scrubbing() -> None:
    secret = "configured-secret-0123456789"
    creds = Credentials.of([secret])
    # The secret straddles the cap: cutting first would leave a prefix the scrub cannot recognise.
    text = "a" * (MAX_MESSAGE - 10) + " " + secret + " tail"
    out = clean(text, creds)
    assert "configured-sec" not in out
    assert len(out) <= MAX_MESSAGE + 2 and out.endswith(" …")
    assert clean("x" * 5000).startswith("x" * MAX_MESSAGE)  # one giant word: a hard cut
    assert clean("  two\n\tlines \r\n ") == "two lines"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {"content-type": "text/html; charset=utf-8"},
            b"x" * 1229,
            "upstream returned 502 (text/html, 1.2 KB)",
        ),
        ({"Content-Type": "TEXT/PLAIN"}, b"oops", "upstream returned 502 (text/plain, 4 B)"),
        ({}, b"x" * (3 * 1024 * 1024), "upstream returned 502 (no content type, 3.0 MB)"),
        ({"content-type": "text/html"}, b"", "upstream returned 502 (empty body)"),
    ],
)
def test_summarise(headers: dict[str, str], body: bytes, expected: str) -> None:
    assert summarise(502, headers, body) == expected


def test_redact_scrubs_a_built_error_in_place() -> None:
    creds = Credentials.of(["stream-secret-value"])
    err = UpstreamError("anthropic: boom stream-secret-value", param="p stream-secret-value")
    creds.redact(err)
    assert "stream-secret-value" not in f"{err} {err.message} {err.param} {err!r}"
    assert err.message == f"anthropic: boom {REDACTED}"
