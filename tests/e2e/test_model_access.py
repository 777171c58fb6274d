"""Which models a key may reach: unknown models are 404, forbidden ones 403, in the caller's format."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.conftest import LIMITED_KEY
from tests.e2e.gateway import Gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEADERS = {"authorization": f"Bearer {LIMITED_KEY}"}


async def _post(gateway: Gateway, path: str, model: str) -> tuple[int, dict[str, object]]:
    body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s, s.post(gateway.url + path, json=body, headers=HEADERS) as r:
        return r.status, await r.json()


async def test_an_unknown_model_is_404_naming_only_the_models_this_key_may_use(gateway: Gateway) -> None:
    status, body = await _post(gateway, "/v1/chat/completions", "no-such-model")
    error = body["error"]
    assert status == 404 and isinstance(error, dict)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "mock" in error["message"] and "gpt" not in error["message"]


async def test_an_unknown_model_is_404_in_anthropic_shape(gateway: Gateway) -> None:
    status, body = await _post(gateway, "/v1/messages", "no-such-model")
    assert status == 404 and body["type"] == "error"
    error = body["error"]
    assert isinstance(error, dict) and error["type"] == "not_found_error"
    assert "no-such-model" in str(error["message"]) and "claude" not in str(error["message"])


async def test_a_model_the_key_may_not_use_is_403_naming_the_allowed_ones(gateway: Gateway) -> None:
    status, body = await _post(gateway, "/v1/chat/completions", "gpt")
    error = body["error"]
    assert status == 403 and isinstance(error, dict) and error["code"] == "model_not_allowed"
    assert "Models this key may use: mock" in str(error["message"])
