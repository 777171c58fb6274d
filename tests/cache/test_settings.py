"""The cache's config: bounds and unknown keys fail at load, naming the path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmrelay.config import load_config
from llmrelay.config_environment import with_server_defaults
from llmrelay.errors import ConfigError


def config(cache: Any = None, state: Any = None) -> dict[str, Any]:
    model: dict[str, Any] = {"name": "fast", "targets": [{"provider": "mock"}]}
    if cache is not None:
        model["cache"] = cache
    raw: dict[str, Any] = {"models": [model]}
    if state is not None:
        raw["state"] = state
    return raw


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (config({"ttl": 0}), "$.models[0].cache.ttl"),
        (config({"ttl": 60, "tll": 1}), "`tll` - at `$.models[0].cache`"),
        (config({"scope": "everyone"}), "$.models[0].cache.scope"),
        (config({"stale_if_error": -1}), "$.models[0].cache.stale_if_error"),
        (config(state={"cache": {"url": "ftp://x"}}), "$.state.cache.url"),
        (config(state={"cache": {"url": "sqlite://"}}), "$.state.cache.url"),
        (config(state={"cache": {"namespace": "Bad-Name"}}), "$.state.cache.namespace"),
        (config(state={"cache": {"namespace": "idem"}}), "$.state.cache.namespace"),
        (config(state={"cache": {"max_entries": 0}}), "$.state.cache.max_entries"),
        (config(state={"cache": {"sizes": 1}}), "`sizes` - at `$.state.cache`"),
    ],
)
def test_bad_cache_config_names_the_path(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert fragment in str(caught.value)


def test_a_redis_cache_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config(state={"cache": {"url": "http://:hunter2@127.0.0.1"}}))
    assert "hunter2" not in str(caught.value)
    loaded = load_config(config({"ttl": 30, "scope": "team"}, {"cache": {"url": "redis://127.0.0.1:6379/0"}}))
    assert loaded.models[0].cache is not None and loaded.models[0].cache.scope == "team"
    assert loaded.state.cache.url == "redis://127.0.0.1:6379/0"


def test_the_server_default_state_url_keeps_the_cache_store(tmp_path: Path) -> None:
    loaded = load_config(
        config({"ttl": 30}, {"cache": {"url": "redis://127.0.0.1:6379/0", "namespace": "x"}})
    )
    served = with_server_defaults(loaded, {"LLMRELAY_HOME": str(tmp_path)})
    assert served.state.url is not None and served.state.url.startswith("sqlite:///")
    assert served.state.cache == loaded.state.cache
