"""The start-up banner: how to call the gateway, and never a secret."""

from __future__ import annotations

import msgspec
import pytest

from llmrelay.config import StateConfig, load_config
from llmrelay.server.banner import banner, mask_url

MODELS = [{"name": "fast", "targets": [{"provider": "mock"}]}]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://app:hunter2@cache:6379/0", "redis://app:***@cache:6379/0"),
        ("postgresql://app:p%40ss@db/llm?sslmode=require", "postgresql://app:***@db/llm?sslmode=require"),
        ("redis://cache:6379/0?password=hunter2&db=1", "redis://cache:6379/0?password=***&db=1"),
        ("redis://app@cache:6379/0", "redis://app@cache:6379/0"),
        ("sqlite:////var/lib/llmrelay.db", "sqlite:////var/lib/llmrelay.db"),
        ("memory://", "memory://"),
    ],
)
def test_state_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_the_banner_masks_the_state_password() -> None:
    # No state URL accepted today holds a password; the banner must still never print one.
    state = StateConfig(url="redis://:hunter2@cache:6379/0")
    config = msgspec.structs.replace(load_config({"models": MODELS}), state=state)
    text = banner(config, port=4000, workers=1)
    assert "hunter2" not in text and "state:  redis://:***@cache:6379/0" in text


def test_a_keyed_gateway_banner_sends_the_key_in_its_examples() -> None:
    config = load_config({"server": {"master_key": "sk-master-0123456789"}, "models": MODELS})
    text = banner(config, port=4100, workers=2)
    assert "sk-master-0123456789" not in text
    assert "curl http://127.0.0.1:4100/v1/chat/completions -H 'Authorization: Bearer <key>'" in text
    assert 'api_key="<key>"' in text and "(2 worker(s))" in text


def test_an_open_gateway_banner_needs_no_key() -> None:
    text = banner(load_config({"models": MODELS}), port=4000, workers=1)
    assert "Authorization" not in text.split("try:")[1]
    assert "open: no API key needed" in text


def test_an_ipv6_host_is_bracketed() -> None:
    config = load_config({"server": {"host": "::1"}, "models": MODELS})
    assert "llmrelay listening on http://[::1]:4000" in banner(config, port=4000, workers=1)
