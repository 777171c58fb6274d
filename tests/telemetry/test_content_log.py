"""The prompt/answer log: only for aliases that ask, secrets always redacted, streams at their end."""

from __future__ import annotations

import json
import logging
from functools import partial

import pytest

from llmrelay import Relay
from llmrelay.config import load_config
from llmrelay.errors import UpstreamError

PROVIDER_SECRET = "prov-secret-value-0123456789"


def config() -> dict[str, object]:
    return {
        "models": [
            {
                "name": "logged",
                "log_content": True,
                "targets": [{"provider": "mock", "api_key": PROVIDER_SECRET}],
            },
            {"name": "quiet", "targets": [{"provider": "mock"}]},
            {
                "name": "broken",
                "log_content": True,
                "retry": {"max_retries": 0},
                "targets": [{"provider": "mock", "options": {"fail_times": 5}}],
            },
        ]
    }


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "llmrelay.content"]


async def test_logs_prompt_and_answer_of_configured_aliases_only_with_secrets_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llmrelay.content")
    prompt = f"my key is sk-proj-abcdefghijklmnop1234 and {PROVIDER_SECRET}, say hi"
    async with Relay(load_config(config())) as relay:
        await relay.chat("logged", [{"role": "user", "content": prompt}])
        await relay.chat("quiet", [{"role": "user", "content": "not logged"}])
        async for _ in relay.stream("logged", [{"role": "user", "content": "streamed question"}]):
            pass
        with pytest.raises(UpstreamError):
            await relay.chat("broken", [{"role": "user", "content": "doomed"}])
    found = lines(caplog)
    assert [line["model"] for line in found] == ["logged", "logged", "broken"]
    text = json.dumps(found)
    assert "say hi" in text and "streamed question" in text
    assert "not logged" not in text
    assert "sk-proj-abcdefghijklmnop1234" not in text and PROVIDER_SECRET not in text
    assert "[redacted]" in text.lower()
    assert "answer" in found[0] and "streamed question" in json.dumps(found[1]["answer"])
    assert found[2]["error"] and "answer" not in found[2]


def test_off_by_default_builds_nothing() -> None:
    from llmrelay.builder import build
    from llmrelay.clock import FakeClock
    from llmrelay.telemetry.content_log import ContentLog

    quiet = load_config({"models": [{"name": "q", "targets": [{"provider": "mock"}]}]})
    assert not any(isinstance(p, ContentLog) for p in _policies(build(quiet, clock=FakeClock()).service))
    logged = load_config(config())
    assert any(isinstance(p, ContentLog) for p in _policies(build(logged, clock=FakeClock()).service))


def _policies(service: object) -> list[object]:
    """The policies of a composed service (``compose`` nests ``partial(policy, call_next=...)``)."""
    out: list[object] = []
    while isinstance(service, partial):
        out.append(service.func)
        service = service.keywords["call_next"]
    return out
