"""The KV protocol: what the exact cache and idempotency need, and nothing more.

``set_if_absent`` is the one atomic primitive (a claim); everything else is plain. TTLs are seconds;
``None`` keeps a value until deleted. Every backend passes ``tests/stores/test_kv_contract.py``.
"""

from __future__ import annotations

from typing import Protocol


class KV(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...
