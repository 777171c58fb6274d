"""``count_tokens``: the first target's own count, an estimate when it has none or is down."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import InvalidRequest, NotFound, Overloaded, RelayError, UpstreamAuthError
from llmrelay.pricing.tokens import estimate_input_tokens
from llmrelay.providers.mock import MockOptions, MockProvider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Request, Result
from llmrelay.token_count import TokenCount, count_tokens
from llmrelay.types import ChatRequest, text_message

REQUEST = ChatRequest(model="fast", messages=(text_message("user", "count these few words please"),))


class Counting(MockProvider):
    """A provider whose counting endpoint answers ``answer`` (a number, an error, or a wait)."""

    def __init__(self, answer: int | RelayError | asyncio.Event | None) -> None:
        super().__init__("m", MockOptions(), FakeClock())
        self.answer = answer
        self.seen: list[tuple[ChatRequest, str | None]] = []

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        self.seen.append((request, ctx.target))
        if isinstance(self.answer, RelayError):
            raise self.answer
        if isinstance(self.answer, asyncio.Event):
            await self.answer.wait()
            return 1
        return self.answer


def router(*providers: Counting, alias: str = "fast", model: str | None = None) -> Router:
    async def never(request: Request, ctx: Context) -> Result:
        raise AssertionError("counting never runs the chat pipeline")

    targets = tuple(
        Target(
            label=f"t{i}",
            weight=1.0,
            provider=p,
            service=never,
            health=TargetHealth(FakeClock()),
            model=model,
        )
        for i, p in enumerate(providers)
    )
    return Router({alias: Route(alias, targets)})


def ctx() -> Context:
    return Context(clock=FakeClock())


async def test_the_first_targets_own_count() -> None:
    first, second = Counting(42), Counting(7)
    assert await count_tokens(router(first, second), REQUEST, ctx()) == TokenCount(42, "provider")
    assert first.seen == [(REQUEST, "t0")] and second.seen == []


async def test_no_endpoint_is_an_estimate() -> None:
    counted = await count_tokens(router(Counting(None)), REQUEST, ctx())
    assert counted == TokenCount(estimate_input_tokens(REQUEST), "estimate")


@pytest.mark.parametrize("error", [Overloaded("busy"), UpstreamAuthError("bad key")])
async def test_a_target_that_is_down_is_an_estimate(error: RelayError) -> None:
    counted = await count_tokens(router(Counting(error)), REQUEST, ctx())
    assert counted.source == "estimate" and counted.input_tokens == estimate_input_tokens(REQUEST)


async def test_the_callers_own_mistake_is_raised() -> None:
    with pytest.raises(InvalidRequest):
        await count_tokens(router(Counting(InvalidRequest("bad block"))), REQUEST, ctx())


async def test_unknown_alias_is_404() -> None:
    with pytest.raises(NotFound):
        await count_tokens(router(Counting(1)), ChatRequest(model="other", messages=REQUEST.messages), ctx())


async def test_a_pattern_sends_the_matched_model() -> None:
    provider = Counting(3)
    patterned = router(provider, alias="openai/*", model="*")
    await count_tokens(patterned, ChatRequest(model="openai/gpt-x", messages=REQUEST.messages), ctx())
    assert provider.seen[0][0].model == "gpt-x"


async def test_cancellation_reaches_the_provider_call() -> None:
    gate = asyncio.Event()
    provider = Counting(gate)
    task = asyncio.create_task(count_tokens(router(provider), REQUEST, ctx()))
    for _ in range(100):  # a bounded number of loop turns until the provider is waiting
        if provider.seen:
            break
        await asyncio.sleep(0)
    assert provider.seen and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
