"""Semantic indexes kept in step through Redis (``cache.index_sync``), against the real Redis and
the real local embedder: a question one replica cached is served by meaning on another, a replica
started later catches up from the stream, and a Redis that is down costs only the sharing."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack

import pytest

from llmrelay.cache.embedder import MiniLM
from llmrelay.cache.index_sync import IndexSync
from llmrelay.cache.semantic import Semantic
from llmrelay.cache.settings import CacheConfig, SemanticConfig
from llmrelay.cache.verify import CHECKS, Verifier
from llmrelay.clock import SystemClock
from llmrelay.context import CallStats, Context
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.stores import open_kv
from llmrelay.stores.resp import Connection
from llmrelay.types import ChatRequest, text_message
from tests.cache.test_semantic import Upstream
from tests.services import require

if importlib.util.find_spec("onnxruntime") is None and os.environ.get("CI") != "true":
    pytest.skip("the `semantic` extra is not installed (scripts/test installs it)", allow_module_level=True)

REDIS = "redis://127.0.0.1:6379/0"
QUESTION = "How do I reset my account password?"
PARAPHRASE = "How can I reset the password of my account?"


@pytest.fixture(scope="module")
def embedder() -> Iterator[MiniLM]:
    model = MiniLM(where="test")
    yield model
    model.close()


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A cache namespace of its own on the shared Redis, its keys and stream deleted at the end."""
    require(6379, "Redis")
    name = f"t{os.urandom(6).hex()}"
    yield name
    redis = Connection(REDIS, connect_timeout=2.0, call_timeout=2.0)
    keys = await redis.call("KEYS", f"llmrelay:{name}:*")
    if keys:
        await redis.call("DEL", *keys)
    redis.close()


async def replica(
    stack: AsyncExitStack, embedder: MiniLM, namespace: str, url: str = REDIS
) -> tuple[Cache, IndexSync]:
    """One replica's cache policy on the Redis store, with its index following the others'."""
    clock = SystemClock()
    config = SemanticConfig()
    semantic = Semantic(config, embedder, Verifier([CHECKS[name] for name in config.checks]), clock)
    alias = AliasCache("m", CacheConfig(ttl=600, semantic=config), semantic)
    kv = open_kv(url, clock, namespace=namespace, timeout=1.0)
    sync = IndexSync(url, namespace, {"m": semantic}, clock, max_len=1000, max_ttl=600)
    for resource in (kv, sync):
        await resource.open()
        stack.push_async_callback(resource.aclose)
    cache = Cache(kv, clock, settings_for=lambda _: alias, aliases=[alias], cost=lambda *_: None)
    return cache, sync


async def outcome(cache: Cache, text: str) -> str:
    ctx = Context(clock=SystemClock(), principal="key-a", stats=CallStats())
    request = ChatRequest(model="m", messages=(text_message("user", text),))
    await cache(request, ctx, Upstream())
    assert ctx.stats is not None and ctx.stats.cache is not None
    return ctx.stats.cache


async def until(sync: IndexSync, condition: Callable[[IndexSync], bool]) -> None:
    """Wait for a replica's background reader to get there (with a deadline)."""
    async with asyncio.timeout(10):
        await sync.wait_until(condition)


async def test_a_question_cached_on_one_replica_is_served_by_meaning_on_another(
    embedder: MiniLM, namespace: str
) -> None:
    async with AsyncExitStack() as stack:
        one, one_sync = await replica(stack, embedder, namespace)
        two, two_sync = await replica(stack, embedder, namespace)
        assert await outcome(one, QUESTION) == "miss"
        await until(two_sync, lambda s: s.adopted == 1)
        assert (await outcome(two, PARAPHRASE)).startswith("semantic-hit; similarity=0.9")
        assert one_sync.adopted == 0  # its own questions were in its index already

        later, later_sync = await replica(stack, embedder, namespace)  # starts after the fact
        await until(later_sync, lambda s: s.adopted == 1)  # read the stream from its start
        assert (await outcome(later, PARAPHRASE)).startswith("semantic-hit")


async def test_a_redis_that_is_down_costs_only_the_sharing(
    embedder: MiniLM, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    caplog.set_level(logging.WARNING, logger="llmrelay.cache")
    async with AsyncExitStack() as stack:
        cache, sync = await replica(stack, embedder, namespace, url=f"redis://127.0.0.1:{port}/0")
        await until(sync, lambda s: s.down)
        assert await outcome(cache, QUESTION) == "miss"  # the store is down too: a miss, served
        assert sync.adopted == 0
    following = [r for r in caplog.records if "cannot follow the other replicas" in r.getMessage()]
    assert len(following) == 1  # once per outage, not once per retry


async def test_damaged_entries_are_skipped_and_the_reader_goes_on(embedder: MiniLM, namespace: str) -> None:
    redis = Connection(REDIS, connect_timeout=2.0, call_timeout=2.0)
    stream = f"llmrelay:{namespace}:semantic"
    good = {b"origin": b"other", b"alias": b"m", b"partition": b"p", b"prompt": b"q", b"key": b"k"}
    damaged = [
        {b"origin": b"other", b"alias": b"m"},  # fields missing
        {**good, b"expires": b"soon", b"vector": b"\0" * 1536},  # not a number
        {**good, b"expires": b"1e12", b"vector": b"\0" * 12},  # a vector of another model
        {**good, b"prompt": b"\xff\xfe", b"expires": b"1e12", b"vector": b"\0" * 1536},  # not UTF-8
    ]
    for fields in damaged:
        await redis.call("XADD", stream, "*", *(part for pair in fields.items() for part in pair))
    redis.close()
    async with AsyncExitStack() as stack:
        one, _ = await replica(stack, embedder, namespace)
        two, two_sync = await replica(stack, embedder, namespace)
        assert await outcome(one, QUESTION) == "miss"
        await until(two_sync, lambda s: s.adopted == 1)  # the good entry after the damaged ones
        assert (await outcome(two, PARAPHRASE)).startswith("semantic-hit")


async def test_questions_older_than_the_longest_ttl_leave_the_stream(
    embedder: MiniLM, namespace: str
) -> None:
    redis = Connection(REDIS, connect_timeout=2.0, call_timeout=2.0)
    stream = f"llmrelay:{namespace}:semantic"
    await redis.call("XADD", stream, "1000-0", "origin", "long-gone")  # from 1970
    async with AsyncExitStack() as stack:
        one, _ = await replica(stack, embedder, namespace)
        for question in ("How do I reset my account password?", "What is the capital of France?"):
            assert await outcome(one, question) == "miss"
    # Closed: what it was sharing has been sent, each question followed by a trim.
    entries = await redis.call("XRANGE", stream, "-", "+")
    redis.close()
    assert isinstance(entries, list) and len(entries) == 2
    assert all(entry_id != b"1000-0" for entry_id, _ in entries)
