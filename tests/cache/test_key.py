from __future__ import annotations

from llmrelay.cache.key import exact_key, tenant
from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.types import ChatRequest, EmbeddingRequest, ResponseFormat, Tool, text_message

HI = (text_message("user", "hi"),)


def test_dict_key_order_does_not_change_the_key() -> None:
    one = ChatRequest(model="m", messages=HI, tools=(Tool(name="t", parameters={"a": 1, "b": 2}),))
    two = ChatRequest(model="m", messages=HI, tools=(Tool(name="t", parameters={"b": 2, "a": 1}),))
    assert exact_key(one, "key:a") == exact_key(two, "key:a")


def test_response_format_tenant_and_request_kind_change_the_key() -> None:
    plain = ChatRequest(model="m", messages=HI)
    as_json = ChatRequest(model="m", messages=HI, response_format=ResponseFormat(type="json_object"))
    keys = {
        exact_key(plain, "key:a"),
        exact_key(as_json, "key:a"),
        exact_key(plain, "key:b"),
        exact_key(EmbeddingRequest(model="m", input=("hi",)), "key:a"),
    }
    assert len(keys) == 4


def test_tenant() -> None:
    ctx = Context(clock=FakeClock(), principal="k1", tags={"team": "search"})
    assert tenant(ctx, "key") == "key:k1"
    assert tenant(ctx, "team") == "team:search"
    assert tenant(ctx, "shared") == "*"
    assert tenant(Context(clock=FakeClock(), principal="k1"), "team") == "key:k1"


def test_server_handled_parameters_do_not_change_the_key() -> None:
    plain = ChatRequest(model="m", messages=HI, extensions={"openai": {"logprobs": True}})
    streamed = ChatRequest(
        model="m",
        messages=HI,
        stream=True,
        extensions={"openai": {"logprobs": True, "stream_options": {"include_usage": True}}},
    )
    assert exact_key(plain, "key:a") == exact_key(streamed, "key:a")
    as_base64 = EmbeddingRequest(
        model="m", input=("hi",), extensions={"openai": {"encoding_format": "base64"}}
    )
    assert exact_key(as_base64, "key:a") == exact_key(EmbeddingRequest(model="m", input=("hi",)), "key:a")
