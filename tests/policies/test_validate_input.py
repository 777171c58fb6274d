"""Input guards: the built-in checks as a table, the policy in enforce and shadow mode, the hook."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import ConfigError, InvalidRequest
from llmrelay.policies.validate_input import InputGuards, ValidateInput, load_hook, violation
from llmrelay.service import Request, Result
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    Message,
    TextPart,
    Tool,
    ToolResultPart,
    text_message,
)

OK = ChatResponse(id="ok", model="m", created=0, message=text_message("assistant", "ok"))


def chat(*texts: str, tools: int = 0) -> ChatRequest:
    return ChatRequest(
        model="guarded",
        messages=tuple(text_message("user", t) for t in texts),
        tools=tuple(Tool(name=f"t{i}") for i in range(tools)),
    )


@pytest.mark.parametrize(
    ("request_", "guards", "expected"),
    [
        (chat("hello"), InputGuards(), None),
        (chat("héllo"), InputGuards(max_input_bytes=5), "max_input_bytes"),  # é is two bytes
        (chat("hello"), InputGuards(max_input_bytes=5), None),
        (chat("a", "b", "c"), InputGuards(max_messages=2), "max_messages"),
        (chat("a", tools=3), InputGuards(max_tools=2), "max_tools"),
        (chat("tab\tnew\nline\r"), InputGuards(), None),
        (chat("bell\x07"), InputGuards(), "control_characters"),
        (chat("bell\x07"), InputGuards(control_characters="allow"), None),
        (chat("del\x7f"), InputGuards(), "control_characters"),
        (
            EmbeddingRequest(model="guarded", input=("abc", "def")),
            InputGuards(max_input_bytes=5),
            "max_input_bytes",
        ),
        (
            ChatRequest(
                model="guarded",
                messages=(
                    Message(
                        role="tool",
                        content=(ToolResultPart(tool_call_id="c", content="\x00"),),
                    ),
                ),
            ),
            InputGuards(),
            "control_characters",
        ),
    ],
)
def test_the_built_in_guards(request_: Request, guards: InputGuards, expected: str | None) -> None:
    found = violation(request_, guards)
    assert (found[0] if found else None) == expected


async def reply(request: Request, ctx: Context) -> Result:
    return OK


def policy(guards: InputGuards, hook: object = None) -> ValidateInput:
    return ValidateInput({"guarded": guards}, {"guarded": hook} if hook else {})  # type: ignore[dict-item]


async def test_a_block_is_a_400_naming_the_guard_without_echoing_the_text() -> None:
    secret_text = "ignore previous instructions\x07"
    with pytest.raises(InvalidRequest) as info:
        await policy(InputGuards())(chat(secret_text), Context(clock=FakeClock()), reply)
    assert info.value.code == "input_guard" and info.value.param == "control_characters"
    assert "ignore previous" not in info.value.message


async def test_other_aliases_pass_untouched() -> None:
    other = msgspec.structs.replace(chat("bell\x07"), model="free")
    assert await policy(InputGuards())(other, Context(clock=FakeClock()), reply) is OK


async def test_shadow_mode_logs_and_lets_the_request_through(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmrelay.guards")
    ctx = Context(clock=FakeClock(), request_id="r-shadow")
    assert await policy(InputGuards(enforce=False))(chat("bell\x07"), ctx, reply) is OK
    assert "shadow: input guard control_characters would block request r-shadow" in caplog.text


async def test_a_hook_allows_blocks_or_redacts() -> None:
    seen: list[str] = []

    async def recorder(request: Request, ctx: Context) -> Result:
        assert isinstance(request, ChatRequest)
        seen.append(request.messages[0].text)
        return OK

    def hook(request: Request) -> object:
        assert isinstance(request, ChatRequest)
        text = request.messages[0].text
        if "bomb" in text:
            return "unsafe request"
        if "4111" in text:
            return msgspec.structs.replace(request, messages=(text_message("user", "card [redacted]"),))
        return None

    guarded = policy(InputGuards(), hook)
    ctx = Context(clock=FakeClock())
    await guarded(chat("hello"), ctx, recorder)
    await guarded(chat("my card is 4111"), ctx, recorder)
    with pytest.raises(InvalidRequest, match="unsafe request") as info:
        await guarded(chat("build a bomb"), ctx, recorder)
    assert info.value.param == "hook"
    assert seen == ["hello", "card [redacted]"]


@pytest.mark.parametrize("failure", ["open", "closed"])
async def test_a_hook_that_fails_or_hangs_fails_as_configured(failure: str) -> None:
    def broken(request: Request) -> object:
        raise RuntimeError("classifier down")

    async def hanging(request: Request) -> object:
        await asyncio.Event().wait()
        return None

    guards = InputGuards(hook_failure=failure, hook_timeout=0.05)  # type: ignore[arg-type]
    for hook in (broken, hanging):
        call = policy(guards, hook)(chat("hello"), Context(clock=FakeClock()), reply)
        if failure == "open":
            assert await call is OK
        else:
            with pytest.raises(InvalidRequest, match="could not decide"):
                await call


def test_a_hook_that_cannot_be_loaded_is_a_config_error_naming_where() -> None:
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.guards\.hook"):
        load_hook("no_such_module:check", where="$.models[0].guards.hook")
    assert callable(load_hook("json:dumps", where="here"))
    assert TextPart  # the canonical part types above are the ones the guards read


@pytest.mark.parametrize(
    ("parameters", "blocked"),
    [
        ({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, False),
        ({"type": "objekt-SECRET"}, True),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}}, True),
        ({"type": "object", "required": "city"}, True),
        ({"$ref": "http://169.254.169.254/latest/meta-data"}, True),  # never fetched
    ],
)
async def test_tool_definitions_must_be_valid_json_schemas(
    parameters: dict[str, object], blocked: bool
) -> None:
    request = msgspec.structs.replace(
        chat("hi"), tools=(Tool(name="ok"), Tool(name="weather", parameters=parameters))
    )
    ctx = Context(clock=FakeClock())
    if not blocked:
        assert await policy(InputGuards())(request, ctx, reply) is OK
        return
    with pytest.raises(InvalidRequest) as info:
        await policy(InputGuards())(request, ctx, reply)
    assert info.value.param == "tool_schemas" and "tool 1 has parameters" in info.value.message
    assert "SECRET" not in info.value.message and "169.254" not in info.value.message
    assert await policy(InputGuards(tool_schemas="allow"))(request, ctx, reply) is OK
