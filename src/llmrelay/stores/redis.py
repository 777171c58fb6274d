"""Redis KV for several replicas: ``SET NX PX`` is the atomic claim; TTLs are Redis's own.

A namespace is a key prefix (``llmrelay:<namespace>:``). Caps are Redis's: its ``maxmemory`` and
``maxmemory-policy`` decide what goes when memory runs out, and llmrelay cannot tell Redis which
keys are claims. For a Redis that holds idempotency records use ``noeviction`` (writes are refused
at the limit, so nothing in flight is dropped) or give llmrelay its own Redis instance.
"""

from __future__ import annotations

from typing import Any


class RedisKV:
    def __init__(self, url: str, *, prefix: str = "llmrelay:default:", timeout: float | None = None) -> None:
        self._url = url
        self._prefix = prefix
        self._timeout = timeout
        self._client: Any = None

    async def open(self) -> None:
        import redis.asyncio as redis  # deferred: only scale-out deployments need it

        if self._client is None:
            self._client = redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._client.set(self._prefix + key, value, px=_ms(ttl))

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return bool(await self._client.set(self._prefix + key, value, px=_ms(ttl), nx=True))

    async def delete(self, key: str) -> None:
        await self._client.delete(self._prefix + key)


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, int(ttl * 1000))
