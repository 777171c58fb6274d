"""The semantic cache with the real local embedder: paraphrases hit, near-duplicates that differ
in a number or a negation never do, and context (tenant, system prompt) must match exactly."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from collections.abc import Iterator

import msgspec
import pytest

from llmrelay.builder import build
from llmrelay.cache.embedder import MiniLM
from llmrelay.cache.semantic import Semantic
from llmrelay.cache.settings import CacheConfig, SemanticConfig
from llmrelay.cache.verify import CHECKS, Verifier
from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.context import CallStats, Context
from llmrelay.errors import ConfigError
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.service import Request, Result
from llmrelay.stores.memory import MemoryKV
from llmrelay.types import ChatRequest, ChatResponse, text_message

if importlib.util.find_spec("onnxruntime") is None and os.environ.get("CI") != "true":
    pytest.skip("the `semantic` extra is not installed (scripts/test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def embedder() -> Iterator[MiniLM]:
    model = MiniLM(where="test")
    yield model
    model.close()


class Upstream:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.calls += 1
        return ChatResponse(
            id=f"r{self.calls}",
            model="m",
            created=1,
            message=text_message("assistant", f"answer {self.calls}"),
        )


def cache(embedder: MiniLM, clock: FakeClock, *, checks: list[str] | None = None) -> Cache:
    config = SemanticConfig() if checks is None else msgspec.convert({"checks": checks}, SemanticConfig)
    verifier = Verifier([CHECKS[name] for name in config.checks])
    alias = AliasCache(
        "m", CacheConfig(ttl=600, semantic=config), Semantic(config, embedder, verifier, clock)
    )
    return Cache(MemoryKV(clock), clock, settings_for=lambda _: alias, aliases=[alias], cost=lambda *_: None)


def ask(text: str, system: str = "Answer briefly.") -> ChatRequest:
    return ChatRequest(model="m", messages=(text_message("system", system), text_message("user", text)))


def ctx(clock: FakeClock, principal: str = "key-a") -> Context:
    return Context(clock=clock, principal=principal, stats=CallStats())


async def outcome(policy: Cache, request: ChatRequest, clock: FakeClock, principal: str = "key-a") -> str:
    c = ctx(clock, principal)
    await policy(request, c, Upstream())
    assert c.stats is not None and c.stats.cache is not None
    return c.stats.cache


async def test_a_paraphrase_is_served_with_its_similarity(embedder: MiniLM) -> None:
    clock = FakeClock()
    policy = cache(embedder, clock)
    assert await outcome(policy, ask("How do I reset my account password?"), clock) == "miss"
    result = await outcome(policy, ask("How can I reset the password of my account?"), clock)
    assert result.startswith("semantic-hit; similarity=0.9")


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("What was the population of France in 2020?", "What was the population of France in 2021?"),
        ("Is coffee good for pregnant women?", "Is coffee not good for pregnant women?"),
        ("Is it safe to drink tap water in Paris?", "Is it not safe to drink tap water in Paris?"),
    ],
)
async def test_a_near_duplicate_with_another_number_or_a_negation_is_not_served(
    embedder: MiniLM, cached: str, asked: str
) -> None:
    clock = FakeClock()
    policy = cache(embedder, clock)
    await outcome(policy, ask(cached), clock)
    assert await outcome(policy, ask(asked), clock) == "miss"
    # the verifier is what refuses it: without checks the same pair is served
    bare = cache(embedder, clock, checks=[])
    await outcome(bare, ask(cached), clock)
    assert (await outcome(bare, ask(asked), clock)).startswith("semantic-hit")


async def test_context_must_match_exactly(embedder: MiniLM) -> None:
    clock = FakeClock()
    policy = cache(embedder, clock)
    await outcome(policy, ask("How do I reset my account password?"), clock)
    paraphrase = "How can I reset the password of my account?"
    assert await outcome(policy, ask(paraphrase, system="Answer in French."), clock) == "miss"
    assert await outcome(policy, ask(paraphrase), clock, principal="key-b") == "miss"


async def test_an_expired_answer_is_not_served(embedder: MiniLM) -> None:
    clock = FakeClock()
    policy = cache(embedder, clock)
    await outcome(policy, ask("How do I reset my account password?"), clock)
    clock.advance(601)
    assert await outcome(policy, ask("How can I reset the password of my account?"), clock) == "miss"


def test_a_missing_embedder_is_a_start_up_error_naming_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    config = load_config(
        {"models": [{"name": "m", "targets": [{"provider": "mock"}], "cache": {"semantic": {}}}]}
    )
    with pytest.raises(
        ConfigError, match=r"minilm-int8.*\$\.models\[0\]\.cache\.semantic|semantic.*minilm-int8"
    ):
        build(config, clock=FakeClock())


def test_semantic_config_errors_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.cache\.semantic\.threshold"):
        load_config(
            {
                "models": [
                    {"name": "m", "targets": [{"provider": "mock"}], "cache": {"semantic": {"threshold": 2}}}
                ]
            }
        )
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.cache\.semantic\.checks"):
        load_config(
            {
                "models": [
                    {
                        "name": "m",
                        "targets": [{"provider": "mock"}],
                        "cache": {"semantic": {"checks": ["vibes"]}},
                    }
                ]
            }
        )


async def test_lookups_that_wait_are_embedded_in_one_batch(
    embedder: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = embedder.embed_batch

    def counting(texts: list[str]) -> object:
        sizes.append(len(texts))
        return real(texts)

    monkeypatch.setattr(embedder, "embed_batch", counting)
    texts = [f"question number {n} about the weather" for n in range(9)]
    vectors = await asyncio.gather(*(embedder.embed(t) for t in texts))
    assert sum(sizes) == 9 and len(sizes) < 9  # the first alone, the others together
    alone = real(["question number 4 about the weather"])[0]
    assert float(vectors[4] @ alone) == pytest.approx(1.0, abs=1e-4)  # each caller got its own row


async def test_an_embedder_failure_is_a_miss_not_an_error(
    embedder: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: list[str]) -> object:
        raise RuntimeError("onnxruntime fell over")

    monkeypatch.setattr(embedder, "embed_batch", broken)
    clock = FakeClock()
    policy = cache(embedder, clock)
    assert await outcome(policy, ask("How do I reset my account password?"), clock) == "miss"
