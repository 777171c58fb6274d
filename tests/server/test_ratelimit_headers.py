"""Rate-limit headers in OpenAI's and Anthropic's conventions."""

from __future__ import annotations

import pytest

from llmrelay.context import CallStats
from llmrelay.server.ratelimit_headers import add_rate_headers, duration, rfc3339
from llmrelay.stores.rates import Decision


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0000006, "1ms"),
        (0.02, "20ms"),
        (0.9999, "1s"),
        (1.5, "1.5s"),
        (17.25, "17.25s"),
        (59.9999, "1m0s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_duration_table(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_rfc3339() -> None:
    assert rfc3339(1_700_000_000) == "2023-11-14T22:13:20Z"


def test_headers_per_face() -> None:
    stats = CallStats(requests=Decision(True, 20, 19, 3.0), tokens=Decision(False, 40000, 100, 50.0, 2.5))
    openai: dict[str, str] = {}
    add_rate_headers(openai, stats, anthropic=False, wall=1_700_000_000)
    assert openai == {
        "x-ratelimit-limit-requests": "20",
        "x-ratelimit-remaining-requests": "19",
        "x-ratelimit-reset-requests": "3s",
        "x-ratelimit-limit-tokens": "40000",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "50s",
    }
    anthropic: dict[str, str] = {}
    add_rate_headers(anthropic, stats, anthropic=True, wall=1_700_000_000)
    assert anthropic["anthropic-ratelimit-requests-reset"] == "2023-11-14T22:13:23Z"
    assert anthropic["anthropic-ratelimit-tokens-remaining"] == "100"
    assert anthropic["x-ratelimit-limit-requests"] == "20"
