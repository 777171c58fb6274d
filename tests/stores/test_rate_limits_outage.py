"""A Redis outage never crashes a request nor holds it: limits fail open or closed as configured,
within ``state.redis.timeout``. Uses a throwaway ``redis-server`` on its own loopback port (never
the shared one), stopped, paused and killed by its PID."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.clock import SystemClock
from llmrelay.errors import RelayError
from llmrelay.relay import Relay
from llmrelay.stores.rates import LimitStoreDown, Rate, Take
from llmrelay.stores.rates_redis import RedisRateLimits
from tests.e2e.gateway import free_port
from tests.services import _missing

TAKE = [Take("k", 1, Rate(100, 60))]


class Throwaway:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.kill()
                    raise RuntimeError("the throwaway redis-server did not start") from None
                time.sleep(0.02)  # polling a starting process, bounded to 10 s

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Throwaway]:
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed", "install redis-server")
    server = Throwaway(tmp_path)
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.parametrize("how", ["killed", "paused"])
async def test_fail_open_admits_within_the_timeout(redis: Throwaway, how: str) -> None:
    store = RedisRateLimits(redis.url, SystemClock(), on_error="open", timeout=0.2)
    await store.open()
    try:
        assert (await store.take(TAKE))[0].remaining == 99
        stop = redis.kill if how == "killed" else redis.pause
        stop()
        started = time.monotonic()
        decisions = await store.take(TAKE)
        assert time.monotonic() - started < 1.0  # a paused Redis would hang without the timeouts
        assert decisions[0].allowed
        assert (await store.take([], slots=[("c", 1)], lease="lease", ttl=60))[0].allowed
        await store.adjust(TAKE)  # dropped, not raised
        await store.leave(["c"], "lease")
    finally:
        if how == "paused" and redis.process.poll() is None:
            redis.resume()
        await store.aclose()


@pytest.mark.parametrize("how", ["killed", "paused"])
async def test_fail_closed_refuses_with_503_within_the_timeout(redis: Throwaway, how: str) -> None:
    store = RedisRateLimits(redis.url, SystemClock(), on_error="closed", timeout=0.2)
    await store.open()
    try:
        await store.take(TAKE)
        stop = redis.kill if how == "killed" else redis.pause
        stop()
        started = time.monotonic()
        with pytest.raises(LimitStoreDown) as caught:
            await store.take(TAKE)
        assert time.monotonic() - started < 1.0
        assert caught.value.status == 503
        with pytest.raises(LimitStoreDown):
            await store.take([], slots=[("c", 1)], lease="lease", ttl=60)
    finally:
        if how == "paused" and redis.process.poll() is None:
            redis.resume()
        await store.aclose()


async def test_the_pipeline_keeps_answering_through_an_outage_and_after_it(redis: Throwaway) -> None:
    config = {
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
        "tiers": {"default": {"rpm": 1000}},
        "state": {"redis": {"url": redis.url, "on_error": "closed", "timeout": 0.2}},
    }
    closed = Relay.from_config(config)
    opened = Relay.from_config({**config, "state": {"redis": {"url": redis.url, "on_error": "open"}}})
    async with closed, opened:
        await closed.chat("m", [{"role": "user", "content": "hi"}])
        redis.pause()
        try:
            with pytest.raises(RelayError) as caught:
                await asyncio.wait_for(closed.chat("m", [{"role": "user", "content": "hi"}]), 2)
            assert caught.value.code == "rate_limit_store_unavailable"
            reply = await asyncio.wait_for(opened.chat("m", [{"role": "user", "content": "hi"}]), 2)
            assert reply.text
            assert not await closed.stores_ready()
        finally:
            redis.resume()
        await closed.chat("m", [{"role": "user", "content": "hi"}])  # back once Redis is
        assert await closed.stores_ready()


def test_several_workers_with_memory_limits_refuse_to_start(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("models: [{name: m, targets: [{provider: mock}]}]\ntiers: {default: {rpm: 5}}\n")
    result = CliRunner().invoke(
        main, ["serve", "-c", str(config), "--workers", "2", "--port", str(free_port())]
    )
    assert result.exit_code == 1
    assert "--workers 2 with rate limits configured" in result.output
    assert "`$.state.redis`" in result.output


async def test_a_restarted_redis_is_used_again_and_its_script_reloaded(redis: Throwaway) -> None:
    store = RedisRateLimits(redis.url, SystemClock(), on_error="closed", timeout=0.5)
    await store.open()
    try:
        assert (await store.take(TAKE))[0].remaining == 99
        flushed = RedisRateLimits(redis.url, SystemClock())
        await flushed.open()
        assert await flushed._live().call("SCRIPT", "FLUSH") == b"OK"  # as a restarted Redis would be
        await flushed.aclose()
        assert (await store.take(TAKE))[0].remaining == 98  # NOSCRIPT answered by loading it again
    finally:
        await store.aclose()


async def test_a_release_sent_in_the_background_reloads_a_flushed_script(redis: Throwaway) -> None:
    store = RedisRateLimits(redis.url, SystemClock(), on_error="closed", timeout=0.5)
    await store.open()
    try:
        assert (await store.take(TAKE, slots=[("s", 1)], lease="one", ttl=60))[0].allowed
        assert await store._live().call("SCRIPT", "FLUSH") == b"OK"
        await store.leave(["s"], "one", adjust=[Take("k", -1, TAKE[0].rate)])  # sent without a task
        await store.settle()
        assert (await store.take(TAKE, slots=[("s", 1)], lease="two", ttl=60))[1].remaining == 99
    finally:
        await store.aclose()
