"""Stored ``/v1/responses`` answers on every state backend (memory, SQLite, a real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.server.response_store import ResponseStore, StoredResponse
from llmrelay.stores import open_kv
from llmrelay.types import (
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    text_message,
)
from tests.services import require

TTL = 30 * 86_400.0


class Backend:
    def __init__(self, name: str, store: ResponseStore, clock: FakeClock | None) -> None:
        self.name, self.store, self.clock = name, store, clock


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "redis":
        require(6379, "Redis")
        url = "redis://127.0.0.1:6379/0"
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'state.db'}"
    kv = open_kv(url, clock, namespace="responses")
    await kv.open()
    try:
        yield Backend(request.param, ResponseStore(kv, ttl=TTL), None if request.param == "redis" else clock)
    finally:
        await kv.aclose()


def new_id() -> str:
    return "resp_" + uuid.uuid4().hex


HISTORY = (
    text_message("user", "Weather?"),
    Message(
        role="assistant",
        content=(
            ReasoningPart(text="think", signature="EqQBCkYIBxgCKkB/sig==", provider="anthropic"),
            ToolCallPart(
                id="toolu_1", name="weather", arguments='{"city":"Paris"}', meta={"gemini": {"x": "y"}}
            ),
        ),
    ),
    Message(role="tool", content=(ToolResultPart(tool_call_id="toolu_1", content="sunny", name="weather"),)),
    Message(role="assistant", content=(TextPart(text="Sunny."),)),
)


async def test_round_trip_keeps_every_part(backend: Backend) -> None:
    principal, rid = f"key-{uuid.uuid4().hex}", new_id()
    record = StoredResponse({"id": rid, "object": "response", "output": []}, HISTORY)
    await backend.store.put(principal, rid, record)
    assert await backend.store.get(principal, rid) == record


async def test_another_principal_sees_nothing(backend: Backend) -> None:
    owner, other, rid = f"key-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}", new_id()
    await backend.store.put(owner, rid, StoredResponse({"id": rid}, ()))
    assert await backend.store.get(other, rid) is None
    assert await backend.store.delete(other, rid) is False
    assert await backend.store.get(owner, rid) is not None
    assert await backend.store.delete(owner, rid) is True
    assert await backend.store.get(owner, rid) is None
    assert await backend.store.delete(owner, rid) is False


async def test_ids_that_are_not_ours_are_never_looked_up(backend: Backend) -> None:
    # "a/resp_x" under principal "p" would be principal "p/a"'s key if ids were not checked.
    principal = f"key-{uuid.uuid4().hex}"
    rid = new_id()
    await backend.store.put(f"{principal}/a", rid, StoredResponse({"id": rid}, ()))
    assert await backend.store.get(principal, f"a/{rid}") is None
    assert await backend.store.get(principal, "resp_NOT-HEX") is None


@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)  # Redis expires on its own clock
async def test_records_expire_after_the_ttl(backend: Backend) -> None:
    assert backend.clock is not None
    principal, rid = f"key-{uuid.uuid4().hex}", new_id()
    await backend.store.put(principal, rid, StoredResponse({"id": rid}, ()))
    backend.clock.advance(TTL - 1)
    assert await backend.store.get(principal, rid) is not None
    backend.clock.advance(2)
    assert await backend.store.get(principal, rid) is None


async def test_concurrent_writers_of_distinct_ids(backend: Backend) -> None:
    principal = f"key-{uuid.uuid4().hex}"
    ids = [new_id() for _ in range(50)]
    await asyncio.gather(*(backend.store.put(principal, i, StoredResponse({"id": i}, HISTORY)) for i in ids))
    found = await asyncio.gather(*(backend.store.get(principal, i) for i in ids))
    assert [r.response["id"] for r in found if r is not None] == ids
