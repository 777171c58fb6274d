"""Stored ``/v1/responses`` answers: what ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

One record per response in the state store's ``responses`` namespace (its own, so idempotency
records and stored conversations never evict each other), keyed by the caller's principal and the
response id: a key never reads, continues or deletes another key's responses (it gets the same 404
as for an id that never existed). A record holds the Response object as it was answered and the
canonical conversation up to and including that answer (without its ``instructions``, which OpenAI
does not carry over either), so a follow-up sends the provider exactly the turns it saw, reasoning
signatures included. Records expire after ``server.responses_ttl`` (30 days by default).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from llmrelay.errors import NotFound
from llmrelay.stores.base import KV
from llmrelay.types import Message

_ID = re.compile(r"^resp_[0-9a-f]{32}$")


class StoredResponse(msgspec.Struct, frozen=True):
    response: dict[str, Any]
    history: tuple[Message, ...]


_decoder = msgspec.json.Decoder(StoredResponse)


def not_found(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"No response found with id '{response_id}'.", code="not_found", param=param)


class ResponseStore:
    def __init__(self, kv: KV, *, ttl: float) -> None:
        self._kv = kv
        self._ttl = ttl

    async def get(self, principal: str, response_id: str) -> StoredResponse | None:
        if not _ID.match(response_id):  # also keeps ids from ever reaching into another key's space
            return None
        raw = await self._kv.get(_key(principal, response_id))
        return None if raw is None else _decoder.decode(raw)

    async def put(self, principal: str, response_id: str, record: StoredResponse) -> None:
        await self._kv.set(_key(principal, response_id), msgspec.json.encode(record), ttl=self._ttl)

    async def delete(self, principal: str, response_id: str) -> bool:
        """Whether there was such a response (deleting one that is not there is a 404)."""
        if await self.get(principal, response_id) is None:
            return False
        await self._kv.delete(_key(principal, response_id))
        return True


def _key(principal: str, response_id: str) -> str:
    return f"{principal}/{response_id}"
