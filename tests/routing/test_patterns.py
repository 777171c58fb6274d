"""Which alias a requested model name resolves to, and which names a key's list allows: tables."""

import pytest

from llmrelay.routing.patterns import ModelNames, Resolved, allows, fill, match

NAMES = ModelNames(["gpt", "openai/*", "openai/gpt-*", "semcache-eval-*", "openai/special", "*-mini"])


@pytest.mark.parametrize(
    ("pattern", "name", "captured"),
    [
        ("openai/*", "openai/gpt-4o", "gpt-4o"),
        ("openai/*", "openai/a/b", "a/b"),
        ("openai/*", "openai/", None),  # the `*` matches one character or more
        ("openai/*", "anthropic/x", None),
        ("*-mini", "gpt-4o-mini", "gpt-4o"),
        ("a*z", "az", None),
        ("a*z", "abz", "b"),
        ("a*a", "aa", None),  # prefix and suffix may not overlap
        ("*", "anything", "anything"),
    ],
)
def test_match(pattern: str, name: str, captured: str | None) -> None:
    assert match(pattern, name) == captured


@pytest.mark.parametrize(
    ("name", "resolved"),
    [
        ("gpt", Resolved("gpt")),
        ("openai/special", Resolved("openai/special")),  # a named alias wins over any pattern
        ("openai/gpt-4o", Resolved("openai/gpt-*", "4o")),  # the longest matching pattern wins
        ("openai/o3", Resolved("openai/*", "o3")),
        ("semcache-eval-7", Resolved("semcache-eval-*", "7")),
        ("gpt-4o-mini", Resolved("*-mini", "gpt-4o")),
        ("openai/x-mini", Resolved("openai/*", "x-mini")),  # longer than `*-mini`
        ("claude", None),
        ("openai/", None),
    ],
)
def test_resolve(name: str, resolved: Resolved | None) -> None:
    assert NAMES.resolve(name) == resolved
    assert (name in NAMES) is (resolved is not None)


def test_patterns_of_one_length_keep_the_config_order() -> None:
    assert ModelNames(["a*", "*a"]).resolve("aba") == Resolved("a*", "ba")
    assert ModelNames(["*a", "a*"]).resolve("aba") == Resolved("*a", "ab")


@pytest.mark.parametrize(
    ("entries", "name", "allowed"),
    [
        ((), "anything", True),
        (("gpt",), "gpt", True),
        (("gpt",), "openai/x", False),
        (("openai/*",), "openai/x", True),
        (("openai/*",), "openai/*", True),  # the pattern alias itself (listed by /v1/models)
        (("openai/*",), "openai/gpt-*", True),  # a narrower pattern: every name it serves is allowed
        (("openai/*",), "gpt", False),
        (("openai/*",), "openai/", False),
        (("openai/x",), "openai/y", False),
    ],
)
def test_key_entries_allow(entries: tuple[str, ...], name: str, allowed: bool) -> None:
    assert allows(entries, name) is allowed


@pytest.mark.parametrize(
    ("template", "captured", "model"),
    [("*", "gpt-4o", "gpt-4o"), ("openai/*", "gpt-4o", "openai/gpt-4o"), ("*-2024", "x", "x-2024")],
)
def test_fill(template: str, captured: str, model: str) -> None:
    assert fill(template, captured) == model
