from collections.abc import AsyncGenerator, Callable
from dataclasses import replace

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import (
    AllTargetsFailed,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    RelayError,
    UpstreamError,
)
from llmrelay.pricing.prices import Price
from llmrelay.providers.mock import MockOptions, MockProvider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, text_message

REQUEST = ChatRequest(model="fast", messages=(text_message("user", "hi"),))


def target(label: str, behaviour: Callable[[], Result], calls: list[str]) -> Target:
    async def service(request: Request, ctx: Context) -> Result:
        calls.append(f"{label}@{ctx.target}")
        return behaviour()

    provider = MockProvider("m", MockOptions(), FakeClock())
    return Target(
        label=label, weight=1.0, provider=provider, service=service, health=TargetHealth(FakeClock())
    )


def ok(label: str) -> Callable[[], Result]:
    def reply() -> Result:
        return ChatResponse(id="x", model=label, created=0, message=text_message("assistant", label))

    return reply


def fail(error: RelayError) -> Callable[[], Result]:
    def raise_it() -> Result:
        raise error

    return raise_it


def ctx() -> Context:
    return Context(clock=FakeClock())


def in_order() -> Callable[[], float]:
    """Descending draws: targets are tried in their configured order."""
    draws = iter([0.9 - i / 100 for i in range(90)])
    return lambda: next(draws)


async def test_fails_over_in_order_then_to_fallback_alias() -> None:
    calls: list[str] = []
    router = Router(
        {
            "fast": Route("fast", (target("a", fail(UpstreamError("x")), calls),), ("smart",)),
            "smart": Route("smart", (target("b", ok("b"), calls),)),
        },
        rand=in_order(),
    )
    result = await router(REQUEST, ctx())
    assert isinstance(result, ChatResponse) and result.model == "b"
    assert calls == ["a@a", "b@b"]


async def test_caller_errors_do_not_fail_over() -> None:
    calls: list[str] = []
    router = Router(
        {
            "fast": Route(
                "fast",
                (target("a", fail(InvalidRequest("bad")), calls), target("b", ok("b"), calls)),
            )
        },
        rand=in_order(),
    )
    with pytest.raises(InvalidRequest):
        await router(REQUEST, ctx())
    assert len(calls) == 1


async def test_context_length_fails_over() -> None:
    calls: list[str] = []
    router = Router(
        {
            "fast": Route(
                "fast",
                (target("small", fail(ContextLengthExceeded("long")), calls),),
                ("big",),
            ),
            "big": Route("big", (target("large", ok("large"), calls),)),
        }
    )
    result = await router(REQUEST, ctx())
    assert isinstance(result, ChatResponse) and result.model == "large"


async def test_everything_failed_names_what_was_tried() -> None:
    calls: list[str] = []
    router = Router(
        {
            "fast": Route(
                "fast",
                (
                    target("a", fail(UpstreamError("one")), calls),
                    target("b", fail(UpstreamError("two")), calls),
                ),
            )
        }
    )
    with pytest.raises(AllTargetsFailed) as info:
        await router(REQUEST, ctx())
    assert [f"{name}@{name}" for name, _ in info.value.errors] == calls
    assert sorted(calls) == ["a@a", "b@b"]
    assert "tried:" in info.value.message


async def test_unknown_alias_lists_the_available_ones() -> None:
    router = Router({"fast": Route("fast", ()), "smart": Route("smart", ())})
    with pytest.raises(NotFound) as info:
        await router(ChatRequest(model="gpt-9", messages=()), ctx())
    assert info.value.message == "The model `gpt-9` does not exist. Available models: fast, smart"
    assert info.value.param == "model"


async def test_429_cools_the_target_down_and_stats_record_the_walk() -> None:
    from llmrelay.context import CallStats
    from llmrelay.errors import RateLimited

    clock = FakeClock()
    calls: list[str] = []
    limited = target("a", fail(RateLimited("slow", retry_after=30)), calls)
    healthy = target("b", ok("b"), calls)
    router = Router({"fast": Route("fast", (limited, healthy))}, rand=in_order())
    stats = CallStats()
    result = await router(REQUEST, Context(clock=clock, stats=stats))
    assert isinstance(result, ChatResponse) and result.target == "b"
    assert stats.targets == ["a", "b"]
    assert limited.health.cooling
    calls.clear()
    await router(REQUEST, Context(clock=clock))
    assert calls == ["b@b"]  # the cooled-down target is not tried first any more


async def test_a_stream_counts_as_busy_until_it_ends_and_least_busy_sees_it() -> None:
    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        yield ChatChunk(text="b")

    async def streaming(request: Request, ctx: Context) -> Result:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    calls: list[str] = []
    first = target("first", ok("first"), calls)
    first = Target(label="first", weight=1.0, provider=first.provider, service=streaming, health=first.health)
    second = target("second", ok("second"), calls)
    router = Router({"fast": Route("fast", (first, second), strategy="least-busy")}, rand=in_order())
    stream = await router(REQUEST, ctx())
    assert isinstance(stream, ChatStream)
    assert first.health.in_flight == 1  # returned, but still being streamed
    answer = await router(REQUEST, ctx())
    assert isinstance(answer, ChatResponse) and answer.text == "second"  # the busy one is avoided
    assert [c.text async for c in stream] == ["a", "b"]
    assert first.health.in_flight == 0 and second.health.in_flight == 0


async def test_a_stream_closed_unread_is_no_longer_busy() -> None:
    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")

    async def streaming(request: Request, ctx: Context) -> Result:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    health = TargetHealth(FakeClock())
    provider = MockProvider("m", MockOptions(), FakeClock())
    only = Target(label="only", weight=1.0, provider=provider, service=streaming, health=health)
    stream = await Router({"fast": Route("fast", (only,))})(REQUEST, ctx())
    assert isinstance(stream, ChatStream) and health.in_flight == 1
    await stream.aclose()
    assert health.in_flight == 0


def echo_model(label: str, seen: list[str]) -> Target:
    async def service(request: Request, ctx: Context) -> Result:
        seen.append(request.model)
        return ChatResponse(id="x", model=request.model, created=0, message=text_message("assistant", label))

    provider = MockProvider("m", MockOptions(), FakeClock())
    return Target(
        label=label,
        weight=1.0,
        provider=provider,
        service=service,
        health=TargetHealth(FakeClock()),
        model="*",
    )


def ask(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=(text_message("user", "hi"),))


async def test_a_wildcard_alias_sends_the_matched_part_upstream_through_one_route() -> None:
    seen: list[str] = []
    pattern = echo_model("p", seen)
    router = Router({"openai/*": Route("openai/*", (pattern,))})
    for name in ("openai/gpt-4o", "openai/o3", "openai/a/b"):
        result = await router(ask(name), ctx())
        assert isinstance(result, ChatResponse) and result.target == "p"
    assert seen == ["gpt-4o", "o3", "a/b"]
    assert router.route("openai/x") == (router.route("openai/y")[0], "x")


async def test_a_named_alias_wins_over_a_pattern_and_keeps_the_request_as_it_is() -> None:
    seen: list[str] = []
    router = Router(
        {
            "openai/*": Route("openai/*", (echo_model("pattern", seen),)),
            "openai/special": Route(
                "openai/special",
                (target("named", ok("named"), []),),
            ),
        }
    )
    result = await router(ask("openai/special"), ctx())
    assert isinstance(result, ChatResponse) and result.target == "named" and seen == []


async def test_a_pattern_target_with_a_fixed_model_gets_the_request_unchanged() -> None:
    seen: list[str] = []
    fixed = echo_model("fixed", seen)
    fixed = Target(fixed.label, fixed.weight, fixed.provider, fixed.service, fixed.health, model=None)
    router = Router({"eval-*": Route("eval-*", (fixed,))})
    await router(ask("eval-1"), ctx())
    assert seen == ["eval-1"]


async def test_a_name_no_alias_or_pattern_matches_is_not_found() -> None:
    router = Router({"openai/*": Route("openai/*", (echo_model("p", []),))})
    with pytest.raises(NotFound, match="openai/"):
        await router(ask("openai/"), ctx())


@pytest.mark.parametrize(
    ("prompt_words", "max_tokens", "first"),
    [
        # a long prompt and a one-token answer: the cheap-input target costs less
        (4000, 1, "cheap-in"),
        # a short prompt and a long answer: the cheap-output target costs less
        (1, 4000, "cheap-out"),
    ],
)
async def test_cheapest_ranks_by_the_estimated_cost_of_this_request(
    prompt_words: int, max_tokens: int, first: str
) -> None:
    calls: list[str] = []
    priced = [
        replace(target("cheap-in", ok("cheap-in"), calls), price=Price(input=0.1, output=10.0)),
        replace(target("cheap-out", ok("cheap-out"), calls), price=Price(input=5.0, output=1.0)),
        target("unpriced", ok("unpriced"), calls),
    ]
    router = Router({"fast": Route("fast", tuple(priced), strategy="cheapest")}, rand=in_order())
    request = ChatRequest(
        model="fast", messages=(text_message("user", "word " * prompt_words),), max_tokens=max_tokens
    )
    result = await router(request, ctx())
    assert isinstance(result, ChatResponse) and result.model == first
