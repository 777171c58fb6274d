"""``/v1/models`` through the real ``openai`` SDK, with aliases shaped like Hugging Face ids."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.e2e.gateway import run_gateway

ALIASES = ["meta-llama/Llama-3.1-8B", "org/team/model:v1", "plain"]


async def test_models_are_retrieved_by_aliases_holding_slashes(tmp_path: Path) -> None:
    config = {"models": [{"name": alias, "targets": [{"provider": "mock"}]} for alias in ALIASES]}
    async with run_gateway(config, tmp_path) as gw:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=20)
        assert [m.id async for m in client.models.list()] == ALIASES
        for alias in ALIASES:
            assert (await client.models.retrieve(alias)).id == alias
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("meta-llama/absent")
