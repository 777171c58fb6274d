from __future__ import annotations

import pytest

from llmrelay.cache.control import Directives, parse_cache_control


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Directives()),
        ("", Directives()),
        ("no-store", Directives(no_store=True)),
        ("No-Cache", Directives(no_cache=True)),
        ("max-age=60", Directives(max_age=60.0)),
        ('max-age="5", no-cache', Directives(no_cache=True, max_age=5.0)),
        ("max-age=60, max-age=10", Directives(max_age=10.0)),
        ("max-age=-1, max-age=abc, private, max-stale", Directives()),  # malformed or unknown: ignored
    ],
)
def test_parse(header: str | None, expected: Directives) -> None:
    assert parse_cache_control(header) == expected
