"""Request tags from ``x-llmrelay-tags`` and ``metadata``: parsed, merged, bounded; bad input is a 400."""

from __future__ import annotations

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.server.tags import MAX_TAGS, request_tags


@pytest.mark.parametrize(
    ("header", "metadata", "expected"),
    [
        (None, None, {}),
        ("feature=search,customer=acme", None, {"feature": "search", "customer": "acme"}),
        (" feature = search , env=prod ", None, {"feature": "search", "env": "prod"}),
        (None, {"feature": "ask"}, {"feature": "ask"}),
        ("feature=search", {"feature": "ask", "env": "dev"}, {"feature": "search", "env": "dev"}),
        ("empty=", None, {"empty": ""}),
    ],
)
def test_tags(header: str | None, metadata: object, expected: dict[str, str]) -> None:
    assert request_tags(header, metadata) == expected


@pytest.mark.parametrize(
    ("header", "metadata", "fragment"),
    [
        ("feature", None, "name=value pairs"),
        ("bad name=x", None, "invalid tag name"),
        ("=x", None, "invalid tag name"),
        ("x=" + "v" * 257, None, "at most 256"),
        ("x=a\x00b", None, "printable"),
        (",".join(f"t{i}=v" for i in range(MAX_TAGS + 1)), None, f"at most {MAX_TAGS} tags"),
        (None, ["a"], "must be an object"),
        (None, {"n": 3}, "must be a string"),
        (None, {"a" * 65: "x"}, "invalid tag name"),
    ],
)
def test_bad_tags_are_a_400(header: str | None, metadata: object, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment) as info:
        request_tags(header, metadata)
    assert info.value.status == 400
