"""moderate_output: a user hook judges each answer; a blocked unary answer ends with
``content_filter`` and no text, a blocked stream with an ``output_blocked`` error at its end."""

from __future__ import annotations

import logging

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import OutputBlocked
from llmrelay.policies.moderate_output import ModerateOutput, OutputModeration
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, ChatResponse, Message, TextPart
from tests.policies.test_validate_output import Upstream

CTX = Context(clock=FakeClock())


def ask(model: str = "m", *, stream: bool = False) -> ChatRequest:
    messages = (Message(role="user", content=(TextPart(text="tell me"),)),)
    return ChatRequest(model=model, messages=messages, stream=stream)


def no_secrets(request: ChatRequest, answer: str) -> str | None:
    return "mentions the launch code" if "launch code" in answer else None


def broken(request: ChatRequest, answer: str) -> str | None:
    raise ValueError("the classifier is down")


def policy(hook: object = no_secrets, **config: object) -> ModerateOutput:
    settings = OutputModeration(hook="tests:unused", **config)  # type: ignore[arg-type]
    return ModerateOutput({"m": (settings, hook)}, alias_of=lambda name: name)  # type: ignore[dict-item]


async def test_an_allowed_answer_and_other_aliases_pass_untouched() -> None:
    upstream = Upstream("all fine", "the launch code is 1234")
    result = await policy()(ask(), CTX, upstream)
    assert isinstance(result, ChatResponse) and result.text == "all fine"
    other = await policy()(ask("other"), CTX, upstream)  # no moderation configured for `other`
    assert isinstance(other, ChatResponse) and other.text == "the launch code is 1234"


async def test_a_blocked_unary_answer_has_no_text_and_says_content_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="llmrelay.moderate_output"):
        result = await policy()(ask(), CTX, Upstream("the launch code is 1234"))
    assert isinstance(result, ChatResponse)
    assert result.text == "" and result.finish_reason == "content_filter"
    assert "1234" not in caplog.text  # the reason is logged, the answer never quoted


async def test_a_blocked_stream_ends_with_an_error_after_its_chunks() -> None:
    result = await policy()(ask(stream=True), CTX, Upstream("the launch code is 1234"))
    assert isinstance(result, ChatStream)
    seen = []
    with pytest.raises(OutputBlocked):
        async for chunk in result:
            seen.append(chunk.text)
    assert "".join(seen) == "the launch code is 1234" and not result.done
    clean = await policy()(ask(stream=True), CTX, Upstream("nothing to see"))
    assert isinstance(clean, ChatStream)
    assert "".join([c.text async for c in clean]) == "nothing to see" and clean.done


@pytest.mark.parametrize(("failure", "blocked"), [("closed", True), ("open", False)])
async def test_a_hook_that_raises_decides_by_failure_mode(failure: str, blocked: bool) -> None:
    result = await policy(broken, failure=failure)(ask(), CTX, Upstream("an answer"))
    assert isinstance(result, ChatResponse)
    assert (result.finish_reason == "content_filter") is blocked


async def test_shadow_mode_logs_and_lets_the_answer_through(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llmrelay.moderate_output"):
        result = await policy(enforce=False)(ask(), CTX, Upstream("the launch code is 1234"))
    assert isinstance(result, ChatResponse) and result.text == "the launch code is 1234"
    assert "would be blocked: mentions the launch code" in caplog.text
