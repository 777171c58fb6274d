"""Config of limits: tiers, target rpm/tpm and state.redis are checked at start-up, naming the path."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay.config import load_config
from llmrelay.errors import ConfigError

MODELS: list[dict[str, Any]] = [{"name": "m", "targets": [{"provider": "mock"}]}]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"tiers": {"free": {"rpm": 0}}}, "`$.tiers.free.rpm`"),
        ({"tiers": {"free": {"tpm": "lots"}}}, "`$.tiers.free.tpm`"),
        ({"tiers": {"free": {"user": {"concurrent": -1}}}}, "`$.tiers.free.user.concurrent`"),
        ({"tiers": {"free": {"modls": {}}}}, "unknown field `modls` - at `$.tiers.free`"),
        ({"tiers": {"free": {"queue": -1}}}, "`$.tiers.free.queue`"),
        (
            {"tiers": {"free": {"models": {"nope": {"rpm": 1}}}}},
            "unknown model alias 'nope' at `$.tiers.free.models`",
        ),
        ({"keys": [{"key": "sk-abc", "tier": "gold"}]}, "unknown tier 'gold' at `$.keys[0].tier`"),
        (
            {"keys": [{"key": "sk-abc", "tier": "gold"}], "tiers": {"free": {"rpm": 1}}},
            "(known: free)",
        ),
        ({"state": {"redis": {"url": "http://x"}}}, "`$.state.redis.url`"),
        ({"state": {"redis": {"url": "redis://x", "on_error": "maybe"}}}, "`$.state.redis.on_error`"),
    ],
)
def test_invalid_limits_fail_at_start_up_naming_the_path(extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"models": MODELS, **extra})
    assert fragment in str(caught.value)


def test_target_limits_are_positive() -> None:
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.targets\[0\]\.rpm"):
        load_config({"models": [{"name": "m", "targets": [{"provider": "mock", "rpm": 0}]}]})


def test_a_redis_password_never_shows() -> None:
    config = load_config({"models": MODELS, "state": {"redis": {"url": "redis://:hunter2@h:6379/0"}}})
    assert "hunter2" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        load_config({"models": MODELS, "state": {"redis": {"url": "http://:hunter2@h"}}})
    assert "hunter2" not in str(caught.value)


def test_valid_tiers_load() -> None:
    config = load_config(
        {
            "models": MODELS,
            "tiers": {"free": {"rpm": 20, "tpm": 40000, "concurrent": 2, "models": {"m": {"rpm": 5}}}},
            "keys": [{"key": "sk-abc", "tier": "free"}],
        }
    )
    assert config.tiers["free"].models["m"].rpm == 5
    assert config.has_limits
