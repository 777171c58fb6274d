"""redact_pii as a policy: what goes down is redacted, what comes back restored (or masked);
config errors name their path; shadow mode changes nothing."""

from __future__ import annotations

import importlib.util

import pytest

from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.policies.redact_pii import PiiConfig, RedactPii, build_redactor
from llmrelay.relay import Relay
from llmrelay.service import Request, Result
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    TextPart,
    ToolCallPart,
    text_message,
)

CTX = Context(clock=FakeClock())
EMAIL = "jane.roe@example.org"


def policy(**config: object) -> RedactPii:
    pii = PiiConfig(**config)  # type: ignore[arg-type]
    return RedactPii({"m": pii}, {"m": build_redactor(pii, where="$.models[0].pii")})


class Echo:
    """An upstream that answers with what it got, plus PII of its own and a tool call."""

    def __init__(self) -> None:
        self.seen: list[Request] = []

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.seen.append(request)
        if isinstance(request, EmbeddingRequest):
            return EmbeddingResponse(model="m", vectors=((0.0,),))
        assert isinstance(request, ChatRequest)
        said = request.messages[-1].text
        parts = (
            TextPart(text=f"{said} / mine: bob@example.net"),
            ToolCallPart(id="c", name="send", arguments=f'{{"to": "{said.split()[-1]}"}}'),
        )
        return ChatResponse(id="r", model="m", created=0, message=Message(role="assistant", content=parts))


def ask(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=(text_message("user", f"write {text}"),))


async def test_prompts_redacted_answers_restored_and_outputs_masked_when_asked() -> None:
    upstream = Echo()
    result = await policy()(ask(EMAIL), CTX, upstream)
    assert isinstance(result, ChatResponse)
    assert upstream.seen[0].messages[-1].text == "write <EMAIL_1>"  # type: ignore[union-attr]
    assert result.text == f"write {EMAIL} / mine: bob@example.net"
    assert result.tool_calls[0].arguments == f'{{"to": "{EMAIL}"}}'
    masked = await policy(outputs=True)(ask(EMAIL), CTX, Echo())
    assert isinstance(masked, ChatResponse) and masked.text == f"write {EMAIL} / mine: [EMAIL]"


async def test_other_aliases_embeddings_and_shadow_mode() -> None:
    upstream = Echo()
    other = ChatRequest(model="other", messages=(text_message("user", EMAIL),))
    assert await policy()(other, CTX, upstream) is not None and upstream.seen[-1] is other
    await policy()(EmbeddingRequest(model="m", input=(f"hi {EMAIL}",)), CTX, upstream)
    assert upstream.seen[-1].input == ("hi <EMAIL_1>",)  # type: ignore[union-attr]
    request = ask(EMAIL)
    await policy(enforce=False)(request, CTX, upstream)
    assert upstream.seen[-1] is request


def test_config_errors_name_the_path() -> None:
    model = {"name": "m", "targets": [{"provider": "mock"}]}
    with pytest.raises(ConfigError, match=r"at `\$\.models\[0\]\.pii\.custom\[0\]\.pattern`"):
        Relay(load_config({"models": [{**model, "pii": {"custom": [{"name": "X", "pattern": "(a"}]}}]}))
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.pii\.kinds"):
        load_config({"models": [{**model, "pii": {"kinds": ["emails"]}}]})
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.pii\.custom\[0\]\.name"):
        load_config({"models": [{**model, "pii": {"custom": [{"name": "lower", "pattern": "x"}]}}]})


@pytest.mark.skipif(importlib.util.find_spec("presidio_analyzer") is not None, reason="presidio installed")
def test_presidio_asked_for_but_missing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="asks for Presidio, which is not installed"):
        build_redactor(PiiConfig(presidio=True), where="$.models[0].pii")
