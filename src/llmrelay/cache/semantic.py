"""The semantic half of the cache, per alias: which stored answer, if any, means the same question.

A request qualifies when it is a chat whose final message is the user's text. Its **partition** is
the exact key of everything but that message (:func:`~llmrelay.cache.key.exact_key` of the request
without it, with the tenant): same alias, parameters, tools and earlier turns, same tenant. Within
the partition the final message is embedded (:mod:`.embedder`), its nearest neighbours found
(:mod:`.index`), and the most similar one at ``threshold`` or above that passes the verifier
(:mod:`.verify`) is the candidate; the policy then reads its answer from the store by exact key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from llmrelay.cache.embedder import Embedder
from llmrelay.cache.index import Ref, VectorIndex
from llmrelay.cache.key import exact_key
from llmrelay.cache.settings import SemanticConfig
from llmrelay.cache.verify import Verifier
from llmrelay.clock import Clock
from llmrelay.service import Request
from llmrelay.types import ChatRequest

log = logging.getLogger("llmrelay.cache")

Share = Callable[[str, str, str, float, Any], None]
"""(partition, prompt, exact key, expires, vector) of a question just remembered."""


@dataclass(slots=True)
class Probe:
    """One request's semantic lookup: its partition, final message and (once embedded) vector."""

    partition: str
    prompt: str
    vector: Any = None


@dataclass(frozen=True, slots=True)
class Candidate:
    similarity: float
    label: int
    key: str


class Semantic:
    def __init__(self, config: SemanticConfig, embedder: Embedder, verifier: Verifier, clock: Clock) -> None:
        self.threshold = config.threshold
        self._embedder = embedder
        self._verifier = verifier
        self._dim = embedder.dim
        self._index = VectorIndex(embedder.dim, clock, max_entries=config.max_entries)
        self._share: Share | None = None

    def probe(self, request: Request, tenant: str) -> Probe | None:
        if not isinstance(request, ChatRequest) or not request.messages:
            return None
        last = request.messages[-1]
        prompt = last.text
        if last.role != "user" or not prompt or len(last.content) != 1:
            return None  # images, tool results: compared exactly only
        prefix = msgspec.structs.replace(request, messages=request.messages[:-1])
        return Probe(exact_key(prefix, tenant), prompt)

    async def embed(self, probe: Probe) -> None:
        probe.vector = await self._embedder.embed(probe.prompt)

    def candidates(self, probe: Probe) -> list[Candidate]:
        """Verified neighbours of an embedded ``probe`` at the threshold or above, most similar first."""
        found = []
        for similarity, label, ref in self._index.nearest(probe.partition, probe.vector):
            if similarity < self.threshold:
                break
            reason = self._verifier(ref.prompt, probe.prompt)
            if reason is not None:
                log.debug("semantic candidate rejected: %s (similarity %.3f)", reason, similarity)
                continue
            found.append(Candidate(similarity, label, ref.key))
        return found

    def served(self, candidate: Candidate) -> None:
        self._index.touch(candidate.label)

    def gone(self, candidate: Candidate) -> None:
        """Its answer has left the store (expired or evicted there)."""
        self._index.remove(candidate.label)

    def clear(self) -> None:
        """Forget every question (the alias's cache was cleared)."""
        self._index.clear()

    def remember(self, probe: Probe, key: str, expires: float) -> None:
        if probe.vector is not None:
            self._index.add(probe.partition, probe.vector, Ref(key, probe.prompt, expires))
            if self._share is not None:
                self._share(probe.partition, probe.prompt, key, expires, probe.vector)

    def share(self, share: Share) -> None:
        """Also hand every question remembered from now on to ``share`` (the other replicas)."""
        self._share = share

    def adopt(self, partition: str, prompt: str, key: str, expires: float, vector: bytes) -> bool:
        """Add a question another replica remembered (its vector as float32 bytes); ``False``
        when the vector is not one of this embedder's."""
        import numpy as np  # the `semantic` extra, loaded with the embedder

        row = np.frombuffer(vector, dtype=np.float32)
        if row.shape != (self._dim,):
            return False
        self._index.add(partition, row, Ref(key, prompt, expires))
        return True
