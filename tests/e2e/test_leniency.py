"""What the gateway does with requests it cannot honour as sent, through the real server.

Structured output from the mock, tool choices naming no tool, ``n > 1``, and parameters of one
provider's format reaching another provider (400 naming them, or dropped with ``drop_params``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pydantic
import pytest
import pytest_asyncio

from tests.e2e.conftest import APP_KEY, Upstreams, gateway_config
from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELLO: Any = [{"role": "user", "content": "Hello gateway"}]
TOOL: Any = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """The shared e2e config plus aliases that drop what their target cannot honour."""
    config = gateway_config(upstreams.urls)
    by_name = {model["name"]: model for model in config["models"]}
    config["models"] += [
        {**by_name["claude"], "name": "claude-drop", "drop_params": True},
        {**by_name["gpt"], "name": "gpt-drop", "drop_params": True},
    ]
    async with run_gateway(config, tmp_path_factory.mktemp("gw")) as gw:
        yield gw


def oai(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0, timeout=20)


def claude(gateway: Gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0, timeout=20)


class Forecast(pydantic.BaseModel):
    city: str
    high: float = pydantic.Field(ge=-50, le=60)
    days: list[str]
    rain: bool | None


async def test_parse_against_the_mock_returns_a_parsed_object(gateway: Gateway) -> None:
    completion = await oai(gateway).chat.completions.parse(
        model="mock", messages=HELLO, response_format=Forecast
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)


async def test_json_object_mode_against_the_mock(gateway: Gateway) -> None:
    reply = await oai(gateway).chat.completions.create(
        model="mock", messages=HELLO, response_format={"type": "json_object"}
    )
    assert reply.choices[0].message.content == '{"text": "mock says hi"}'


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([TOOL], {"type": "function", "function": {"name": "missing"}}),
        (None, {"type": "function", "function": {"name": "lookup"}}),
        (None, "required"),
    ],
)
async def test_openai_tool_choice_without_its_tool_is_a_400(
    gateway: Gateway, tools: Any, choice: Any
) -> None:
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    with pytest.raises(openai.BadRequestError) as bad:
        await oai(gateway).chat.completions.create(model="mock", messages=HELLO, tool_choice=choice, **extra)
    assert bad.value.param == "tool_choice"


async def test_anthropic_tool_choice_without_its_tool_is_a_400(gateway: Gateway) -> None:
    tool: Any = {"name": "lookup", "input_schema": {"type": "object"}}
    with pytest.raises(anthropic.BadRequestError) as bad:
        await claude(gateway).messages.create(
            model="mock",
            max_tokens=50,
            messages=HELLO,
            tools=[tool],
            tool_choice={"type": "tool", "name": "missing"},
        )
    assert "tool_choice" in bad.value.message and "missing" in bad.value.message


async def test_auto_and_none_need_no_tools(gateway: Gateway) -> None:
    for choice in ("auto", "none"):
        reply = await oai(gateway).chat.completions.create(model="mock", messages=HELLO, tool_choice=choice)
        assert reply.choices[0].message.content == "mock says hi"


@pytest.mark.parametrize("model", ["mock", "gpt", "claude"])
async def test_n_above_one_is_a_400_and_n_one_is_fine(gateway: Gateway, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await oai(gateway).chat.completions.create(model=model, messages=HELLO, n=2)
    assert bad.value.param == "n"
    assert "n separate requests" in bad.value.message
    reply = await oai(gateway).chat.completions.create(model=model, messages=HELLO, n=1)
    assert len(reply.choices) == 1


async def test_openai_parameter_to_an_anthropic_alias_is_a_400_naming_it(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await oai(gateway).chat.completions.create(model="claude", messages=HELLO, logprobs=True)
    assert bad.value.param == "logprobs"
    assert "logprobs" in bad.value.message and "drop_params" in bad.value.message
    assert upstreams.anthropic.requests == []


async def test_drop_params_drops_them_and_answers(gateway: Gateway, upstreams: Upstreams) -> None:
    reply = await oai(gateway).chat.completions.create(model="claude-drop", messages=HELLO, logprobs=True)
    assert reply.choices[0].message.content == "You said: Hello gateway"
    assert "logprobs" not in upstreams.anthropic.requests[-1].json


async def test_openai_parameters_reach_an_openai_upstream(gateway: Gateway, upstreams: Upstreams) -> None:
    await oai(gateway).chat.completions.create(model="gpt", messages=HELLO, logprobs=True, top_logprobs=2)
    sent = upstreams.openai.requests[-1].json
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)


async def test_anthropic_parameter_to_an_openai_alias_is_a_400_naming_it(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        await claude(gateway).messages.create(
            model="gpt", max_tokens=50, messages=HELLO, extra_body={"top_k": 5}
        )
    assert "top_k" in bad.value.message
    assert upstreams.openai.requests == []
    reply = await claude(gateway).messages.create(
        model="gpt-drop", max_tokens=50, messages=HELLO, extra_body={"top_k": 5}
    )
    assert reply.content[0].type == "text"
    assert "top_k" not in upstreams.openai.requests[-1].json


async def test_anthropic_parameters_reach_an_anthropic_upstream(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    await claude(gateway).messages.create(
        model="claude", max_tokens=50, messages=HELLO, extra_body={"top_k": 5}
    )
    assert upstreams.anthropic.requests[-1].json["top_k"] == 5
