"""The Relay facade end to end over the built-in mock provider (no network)."""

import asyncio

import pytest

from llmrelay import (
    AllTargetsFailed,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    Relay,
    StreamInterrupted,
    SyncRelay,
)
from llmrelay.clock import FakeClock

HI = [{"role": "user", "content": "Hi there"}]


def relay(options: dict[str, object] | None = None, **model: object) -> Relay:
    return Relay.from_config(
        {
            "models": [
                {
                    "name": "demo",
                    "targets": [{"provider": "mock", "options": options or {}}],
                    **model,
                },
                {"name": "embed", "targets": [{"provider": "mock", "model": "mock-embed"}]},
            ]
        },
        clock=FakeClock(),
    )


async def test_chat_echoes_and_reports_usage_and_target() -> None:
    async with relay() as r:
        reply = await r.chat("demo", HI)
    assert reply.text == "You said: Hi there"
    assert reply.finish_reason == "stop"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.target == "mock/default"
    assert r.models == ["demo", "embed"]


async def test_stream_yields_chunks_that_join_to_the_answer() -> None:
    async with relay({"text": "one two three"}) as r:
        call = r.stream("demo", HI)
        chunks = [c async for c in call]
    assert "".join(c.text for c in chunks) == "one two three"
    assert len([c for c in chunks if c.text]) == 3
    assert chunks[-1].usage is not None
    final = call.final()
    assert final.text == "one two three" and final.finish_reason == "stop"
    assert final.target == "mock/default"


async def test_embed_gives_unit_vectors_of_the_asked_size() -> None:
    async with relay() as r:
        out = await r.embed("embed", ["a", "b"], dimensions=16)
        same = await r.embed("embed", "a", dimensions=16)
    assert len(out.vectors) == 2 and all(len(v) == 16 for v in out.vectors)
    assert out.vectors[0] == same.vectors[0] != out.vectors[1]
    assert abs(sum(x * x for x in out.vectors[0]) - 1) < 1e-9


async def test_tools_forced_call_and_openai_style_inputs() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with relay() as r:
        reply = await r.chat("demo", HI, tools=[tool], tool_choice="required")
    assert reply.finish_reason == "tool_calls"
    assert reply.tool_calls[0].name == "lookup"


async def test_bad_message_dict_is_a_precise_invalid_request() -> None:
    async with relay() as r:
        with pytest.raises(InvalidRequest) as info:
            await r.chat("demo", [{"role": "wizard", "content": "x"}])
    assert "role" in info.value.message


async def test_unknown_model() -> None:
    async with relay() as r:
        with pytest.raises(NotFound, match="Available models: demo, embed"):
            await r.chat("nope", HI)


async def test_fails_over_between_targets_and_names_them_when_all_fail() -> None:
    config = {
        "models": [
            {
                "name": "demo",
                "targets": [
                    {"provider": "mock", "name": "bad", "options": {"fail_times": 99}},
                    {"provider": "mock", "name": "good", "weight": 0.001},
                ],
            },
            {
                "name": "dead",
                "targets": [
                    {"provider": "mock", "name": "d1", "options": {"fail_times": 9}},
                    {
                        "provider": "mock",
                        "name": "d2",
                        "options": {"fail_times": 9, "fail_status": 429},
                    },
                ],
            },
        ]
    }
    async with Relay.from_config(config, clock=FakeClock()) as r:
        replies = [await r.chat("demo", HI) for _ in range(5)]
        assert {x.target for x in replies} == {"good"}
        with pytest.raises(AllTargetsFailed) as info:
            await r.chat("dead", HI)
    assert {name for name, _ in info.value.errors} == {"d1", "d2"}


async def test_total_deadline_cancels_a_slow_call() -> None:
    async with relay({"latency": 5}, timeout={"total": 2}) as r:
        with pytest.raises(DeadlineExceeded):
            await r.chat("demo", HI)
        assert (await r.chat("demo", HI, timeout=10)).text.startswith("You said")


async def test_mid_stream_failure_raises_after_the_commit_point() -> None:
    async with relay({"text": "a b c d", "fail_after_chunks": 2}) as r:
        got = []
        with pytest.raises(StreamInterrupted):
            async for chunk in r.stream("demo", HI):
                got.append(chunk.text)
    assert got == ["a", " b"]


async def test_leaving_a_stream_early_closes_it() -> None:
    async with relay({"text": "a b c d"}) as r:
        async with r.stream("demo", HI) as call:
            async for _ in call:
                break
        with pytest.raises(RuntimeError):
            call.final()


def test_sync_wrapper_is_the_same_api() -> None:
    config = {"models": [{"name": "demo", "targets": [{"provider": "mock", "options": {"text": "x y"}}]}]}
    with SyncRelay.from_config(config) as r:
        assert r.chat("demo", HI).text == "x y"
        assert "".join(c.text for c in r.stream("demo", HI)) == "x y"
        assert len(r.embed("demo", ["q"]).vectors) == 1
        with pytest.raises(NotFound):
            r.chat("nope", HI)


async def test_relay_can_be_used_from_many_tasks() -> None:
    async with relay() as r:
        replies = await asyncio.gather(
            *(r.chat("demo", [{"role": "user", "content": str(i)}]) for i in range(20))
        )
    assert [x.text for x in replies] == [f"You said: {i}" for i in range(20)]


async def test_unknown_options_are_type_errors_that_name_them() -> None:
    async with relay() as r:
        with pytest.raises(TypeError, match=r"^chat\(\) got an unexpected keyword argument 'temprature'"):
            await r.chat("demo", HI, temprature=0.5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"Did you mean 'temperature'\?"):
            await r.chat("demo", HI, temprature=0.5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"^stream\(\) .* 'max_token'"):
            r.stream("demo", HI, max_token=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("temperature", "hot"),
        ("top_p", [1]),
        ("max_tokens", 1.5),
        ("stop", 5),
        ("seed", "x"),
        ("user", 3),
        ("parallel_tool_calls", "yes"),
        ("tool_choice", 7),
        ("response_format", {"type": "yaml"}),
    ],
)
async def test_bad_option_values_get_the_servers_invalid_request(option: str, value: object) -> None:
    import msgspec

    from llmrelay.wire.openai_inbound import decode_chat_request

    body = msgspec.json.encode({"model": "demo", "messages": HI, option: value})
    with pytest.raises(InvalidRequest) as server:
        decode_chat_request(body)
    async with relay() as r:
        with pytest.raises(InvalidRequest) as sdk:
            await r.chat("demo", HI, **{option: value})  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest) as streamed:
            r.stream("demo", HI, **{option: value})  # type: ignore[arg-type]
    assert sdk.value.param == streamed.value.param == server.value.param
    assert (server.value.param or "").startswith(option)
    assert sdk.value.message == server.value.message


async def test_bad_extensions_are_an_invalid_request() -> None:
    async with relay() as r:
        for bad in ({"openai": 5}, ["openai"]):
            with pytest.raises(InvalidRequest) as info:
                await r.chat("demo", HI, extensions=bad)  # type: ignore[arg-type]
            assert info.value.param == "extensions"
        reply = await r.chat("demo", HI, extensions={"openai": {"logprobs": True}})
    assert reply.text == "You said: Hi there"


async def test_good_options_still_pass() -> None:
    async with relay() as r:
        reply = await r.chat(
            "demo", HI, temperature=1, top_p=0.5, max_tokens=50, stop=("x", "y"), seed=3, user="u"
        )
    assert reply.text == "You said: Hi there"


@pytest.mark.parametrize("timeout", ["5", 0, -1, True])
async def test_bad_timeout_is_an_invalid_request_naming_it(timeout: object) -> None:
    async with relay() as r:
        for call in (
            lambda: r.chat("demo", HI, timeout=timeout),  # type: ignore[arg-type]
            lambda: r.embed("embed", "a", timeout=timeout),  # type: ignore[arg-type]
        ):
            with pytest.raises(InvalidRequest, match="`timeout`") as info:
                await call()
            assert info.value.param == "timeout"
        with pytest.raises(InvalidRequest, match="`timeout`"):
            r.stream("demo", HI, timeout=timeout)  # type: ignore[arg-type]


async def test_a_closed_relay_says_so() -> None:
    r = relay()
    async with r:
        assert (await r.chat("demo", HI)).text
    with pytest.raises(RuntimeError, match="Relay is closed"):
        await r.chat("demo", HI)
    with pytest.raises(RuntimeError, match="Relay is closed"):
        await r.embed("embed", "a")
    with pytest.raises(RuntimeError, match="Relay is closed"):
        async for _ in r.stream("demo", HI):
            pass
    async with r:  # opening again is allowed
        assert (await r.chat("demo", HI)).text


def test_a_closed_sync_relay_says_so() -> None:
    config = {"models": [{"name": "demo", "targets": [{"provider": "mock"}]}]}
    r = SyncRelay.from_config(config)
    r.close()
    with pytest.raises(RuntimeError, match="SyncRelay is closed"):
        r.chat("demo", HI)
    with pytest.raises(RuntimeError, match="SyncRelay is closed"):
        r.stream("demo", HI)
    with pytest.raises(RuntimeError, match="SyncRelay is closed"):
        r.embed("demo", "a")
    r.close()  # closing twice is harmless


def test_sync_methods_keep_their_signatures_and_docs() -> None:
    import inspect

    for name in ("chat", "embed"):
        sync_sig = inspect.signature(getattr(SyncRelay, name))
        async_sig = inspect.signature(getattr(Relay, name))
        assert sync_sig.parameters == async_sig.parameters
        assert "args" not in sync_sig.parameters
        assert getattr(SyncRelay, name).__doc__ == getattr(Relay, name).__doc__
    for documented in (Relay, SyncRelay, Relay.chat, Relay.stream, Relay.embed):
        assert documented.__doc__ and len(documented.__doc__.split()) > 5
    assert "model" in inspect.signature(SyncRelay.chat).parameters


def test_sync_stream_checks_its_options_at_the_call() -> None:
    config = {"models": [{"name": "demo", "targets": [{"provider": "mock"}]}]}
    with SyncRelay.from_config(config) as r:
        with pytest.raises(TypeError, match="temprature"):
            r.stream("demo", HI, temprature=1)  # type: ignore[call-arg]
        with pytest.raises(InvalidRequest, match="`temperature`"):
            r.stream("demo", HI, temperature="hot")  # type: ignore[arg-type]


async def test_cost_of_an_answer_at_its_targets_price() -> None:
    config = {
        "models": [
            {"name": "priced", "targets": [{"provider": "mock", "price": {"input": 2.0, "output": 8.0}}]},
            {
                "name": "free",
                "targets": [{"provider": "mock", "name": "local", "price": {"input": 0, "output": 0}}],
            },
            {"name": "unknown", "targets": [{"provider": "mock", "name": "unpriced"}]},
        ]
    }
    async with Relay.from_config(config, clock=FakeClock()) as r:
        reply = await r.chat("priced", HI)
        free = await r.chat("free", HI)
        unknown = await r.chat("unknown", HI)
    usage = reply.usage
    assert r.cost(reply.target, usage) == pytest.approx(
        (usage.input_tokens * 2 + usage.output_tokens * 8) / 1e6
    )
    assert r.cost(free.target, free.usage) == 0.0
    assert r.cost(unknown.target, unknown.usage) is None
    assert r.cost(None, usage) is None
    assert r.cost("no-such-target", usage) is None


def test_one_label_with_two_prices_is_refused_with_its_path() -> None:
    from llmrelay.errors import ConfigError

    target = {"provider": "mock", "name": "m"}
    config = {
        "models": [
            {"name": "a", "targets": [{**target, "price": {"input": 1, "output": 1}}]},
            {"name": "b", "targets": [{**target, "price": {"input": 2, "output": 2}}]},
        ]
    }
    with pytest.raises(ConfigError, match=r"\$\.models\[1\]\.targets\[0\]"):
        Relay.from_config(config)


def test_the_blocking_relay_prices_answers_too() -> None:
    config = {
        "models": [{"name": "m", "targets": [{"provider": "mock", "price": {"input": 1, "output": 1}}]}]
    }
    with SyncRelay.from_config(config) as r:
        reply = r.chat("m", HI)
        assert r.cost(reply.target, reply.usage) == pytest.approx(reply.usage.total_tokens / 1e6)
