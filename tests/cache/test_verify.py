from __future__ import annotations

import pytest

from llmrelay.cache.verify import CHECKS, Verifier

ALL = Verifier(list(CHECKS.values()))


@pytest.mark.parametrize(
    ("cached", "asked", "reason"),
    [
        ("What is 2 + 2?", "What is 2 + 3?", "numbers"),
        ("Best laptop under 500 dollars?", "Best laptop under five hundred dollars?", "numbers"),
        ("Flights to Rome in May?", "Flights to Rome in June?", "dates"),
        ("How far is Lyon from Paris in km?", "How far is Lyon from Paris in miles?", "units"),
        ("Who is Barack Obama?", "Who is Donald Trump?", "named entities"),
        ("Is it safe?", "Is it not safe?", "negation"),
        ("Why can't I sleep?", "Why can I sleep?", "negation"),
        ("Is coffee good for you?", "Is coffee bad for you?", "antonyms"),
        ("Why is the sky blue?", "When is the sky blue?", "question word"),
        ("Convert benzene into toluene?", "Convert toluene into benzene?", "roles"),
        (
            "Is it safe to drive from Texas to California?",
            "Is it safe to drive from California to Texas?",
            "roles",
        ),
    ],
)
def test_each_known_false_hit_is_rejected(cached: str, asked: str, reason: str) -> None:
    found = ALL(cached, asked)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("How do I learn Python?", "What is the best way to learn Python?"),
        ("How can I lose weight fast?", "What's the quickest way to lose weight?"),
        ("Why is the sky blue?", "why is the sky blue"),
        ("Is it not safe?", "Isn't it safe?"),
        ("Best book for robotics to learn from scratch?", "Best book for robotics to start from scratch?"),
    ],
)
def test_paraphrases_pass(cached: str, asked: str) -> None:
    assert ALL(cached, asked) is None
