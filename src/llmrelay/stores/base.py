"""The KV protocol: what the exact cache and idempotency need, and nothing more.

``set_if_absent`` is the one atomic primitive (a claim); everything else is plain. TTLs are seconds;
``None`` keeps a value until deleted. Every backend passes ``tests/stores/test_kv_contract.py``.

Each user of state opens its own namespace (``open_kv(url, clock, namespace=...)``) with its own
caps, so one user's churn never evicts another's records. What happens at a cap is the backend's
to document; no backend evicts a live claim (see :mod:`llmrelay.stores.memory`).
"""

from __future__ import annotations

from typing import Protocol

from llmrelay.errors import RelayError


class Resource(Protocol):
    """A store the relay opens, closes and checks for readiness."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...


class StoreFull(RelayError):
    """A namespace is at its cap and holds nothing it may evict (only in-flight claims), or one
    entry is larger than the whole byte cap. Refusing is the safe answer: dropping a claim would
    let a duplicate request run twice."""

    status = 503
    code = "state_store_full"


class KV(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool: ...
