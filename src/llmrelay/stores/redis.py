"""Redis KV for several replicas: ``SET NX PX`` is the atomic claim; TTLs are Redis's own.

A namespace is a key prefix (``llmrelay:<namespace>:``). Caps are Redis's: its ``maxmemory`` and
``maxmemory-policy`` decide what goes when memory runs out, and llmrelay cannot tell Redis which
keys are claims. For a Redis that holds idempotency records use ``noeviction`` (writes are refused
at the limit, so nothing in flight is dropped) or give llmrelay its own Redis instance.

It speaks RESP through :mod:`.resp`, the connection the rate limits use: no client package to
install, one pipelined connection per namespace. A Redis that cannot be reached, or does not
answer within ``timeout``, raises :class:`~llmrelay.stores.resp.RedisDown` (a ``ConnectionError``);
an error reply (``READONLY``, ``OOM``) raises :class:`~llmrelay.stores.resp.ReplyError`.
"""

from __future__ import annotations

from llmrelay.stores.resp import Connection, Reply, ReplyError

CONNECT_TIMEOUT = 5.0
"""Seconds to connect when no ``timeout`` is given (a cache store on another Redis)."""


class RedisKV:
    def __init__(self, url: str, *, prefix: str = "llmrelay:default:", timeout: float | None = None) -> None:
        self._connection = Connection(url, connect_timeout=timeout or CONNECT_TIMEOUT, call_timeout=timeout)
        self._prefix = prefix

    async def open(self) -> None:
        return None  # connects at the first call (and again after a failure)

    async def aclose(self) -> None:
        self._connection.close()

    async def ping(self) -> bool:
        return await self._call("PING") == b"PONG"

    async def get(self, key: str) -> bytes | None:
        value = await self._call("GET", self._prefix + key)
        assert value is None or isinstance(value, bytes)
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._call("SET", self._prefix + key, value, *_expiry(ttl))

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self._call("SET", self._prefix + key, value, *_expiry(ttl), "NX") is not None

    async def delete(self, key: str) -> None:
        await self._call("DEL", self._prefix + key)

    async def _call(self, *args: bytes | str | int) -> Reply:
        reply = await self._connection.call(*args)
        if isinstance(reply, ReplyError):
            raise reply
        return reply


def _expiry(ttl: float | None) -> tuple[str, int] | tuple[()]:
    return () if ttl is None else ("PX", max(1, int(ttl * 1000)))
