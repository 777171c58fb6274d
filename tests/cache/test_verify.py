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
            "What is the reagent used to convert ethanol to ethanoic acid?",
            "What is the reagent used to convert ethanoic acid to ethanol?",
            "roles",
        ),
        ("What do women in their forties want?", "What do women in their fifties want?", "numbers"),
        (
            "What are the pros and cons of nuclear power?",
            "What are the pros of nuclear power?",
            "coordination",
        ),
        ("Which chore do you love and hate most?", "Which chore do you hate most?", "coordination"),
        (
            "Why did carrier pigeons become extinct?",
            "When did carrier pigeons become extinct?",
            "question word",
        ),
        ("Is marriage important in life?", "Why is marriage important in life?", "question word"),
        ("When will the sun become a red giant?", "How will the sun become a red giant?", "question word"),
        ("Is Lyon in France?", "Is Lyon in Belgium?", "named entities"),
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
        # names in another case or inflection; a capital that opens a sentence is no name
        ("Can India defeat China in a war?", "Can india defeat china in a war?"),
        ("How do I recover deleted Snapchat messages?", "How do I recover deleted snapchats?"),
        ("Why do people in India spend so much on weddings?", "Why do Indians spend so much on weddings?"),
        ("Is flat better than nested?", "Flat is better than nested?"),
        # "one" the pronoun; "why or why not" negates nothing; a later "why" or "when"
        ("How can one become a singer?", "How can I become a singer?"),
        ("Is Einstein an atheist? Why or why not?", "Was Einstein an atheist?"),
        ("Which famous person would you like to be?", "Which famous person would you like to be? Why?"),
        ("What were you doing when the news broke?", "What were you doing as the news broke?"),
        ("Which party will win the election?", "Who will win the election?"),
        ("Can you take Cialis and Viagra together?", "Can I take viagra and cialis together?"),
    ],
)
def test_paraphrases_pass(cached: str, asked: str) -> None:
    assert ALL(cached, asked) is None
