"""Budget config: refused at load with the path named when it cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay.config import load_config
from llmrelay.errors import ConfigError

BASE: dict[str, Any] = {"models": [{"name": "m", "targets": [{"provider": "mock"}]}]}


@pytest.mark.parametrize(
    ("budgets", "fragment"),
    [
        ([{"scope": "org", "limit_usd": 1}], "unknown budget scope 'org' at `$.budgets[0].scope`"),
        ([{"scope": "tag:", "limit_usd": 1}], "unknown budget scope"),
        ([{"scope": "team", "limit_usd": -1}], "$.budgets[0].limit_usd"),
        ([{"scope": "team", "limit_usd": 1, "window": "weekly"}], "$.budgets[0].window"),
        ([{"scope": "team", "limit_usd": 1, "mode": "loud"}], "$.budgets[0].mode"),
        ([{"scope": "team", "limit_usd": 1, "match": ""}], "an empty match at `$.budgets[0].match`"),
        ([{"scope": "team", "limit_usd": 1}, {"scope": "team", "limit_usd": 2}], "a second budget named"),
        ([{"scope": "team", "limit": 1}], "limit"),
    ],
)
def test_bad_budgets_fail_at_load(budgets: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, "budgets": budgets})
    assert fragment in info.value.message


def test_budgets_load() -> None:
    config = load_config(
        {
            **BASE,
            "budgets": [
                {"scope": "team", "match": "search", "window": "monthly", "limit_usd": 100, "mode": "hard"},
                {"scope": "tag:customer", "match": "acme", "window": "daily", "limit_usd": 5, "mode": "soft"},
                {"scope": "key", "limit_usd": 10, "window": "total", "name": "every key"},
            ],
        }
    )
    assert [b.label for b in config.budgets] == [
        "team=search/monthly",
        "tag:customer=acme/daily",
        "every key",
    ]
