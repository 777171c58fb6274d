"""The semantic cache's vector index: approximate nearest neighbours with deletion, in process.

One small hnswlib graph per **partition** (a tenant and a conversation prefix: only questions
asked in the same context may share an answer), grown by doubling, so a lookup searches only its
own partition however many others there are. Chosen by measurement over usearch and faiss (see
docs/architecture.md): hnswlib deletes (``mark_deleted``) and reuses deleted slots
(``replace_deleted``), which TTL and LRU need; faiss's HNSW cannot delete.

Bounded by ``max_entries`` over all partitions: at the cap the least recently used entry (added
or served) goes. An entry also goes when it has expired or its answer has left the store; the
index never holds the answers themselves, only their exact keys, so a replica can rebuild it from
shared entries (``prompt`` and ``prefix`` are in each :class:`~llmrelay.cache.entry.Entry`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from llmrelay.clock import Clock

_EF = 64
"""Search breadth: recall@1 above 0.99 on MiniLM vectors at 100,000 entries, ~1 ms."""


@dataclass(frozen=True, slots=True)
class Ref:
    key: str
    """The exact key of the stored answer."""
    prompt: str
    """The final user message it answered (what the verifier compares)."""
    expires: float
    """Wall-clock seconds after which the answer is not served."""


class _Partition:
    def __init__(self, hnswlib: Any, dim: int) -> None:
        self.graph = hnswlib.Index(space="ip", dim=dim)
        self.graph.init_index(max_elements=16, ef_construction=100, M=16, allow_replace_deleted=True)
        self.graph.set_num_threads(1)
        self.graph.set_ef(_EF)
        self.refs: dict[int, Ref] = {}
        self.free = 0  # deleted slots that replace_deleted may reuse

    def add(self, label: int, vector: Any, ref: Ref) -> None:
        if self.free:
            self.graph.add_items(vector, [label], replace_deleted=True)
            self.free -= 1
        else:
            if self.graph.get_current_count() >= self.graph.get_max_elements():
                self.graph.resize_index(self.graph.get_max_elements() * 2)
            self.graph.add_items(vector, [label])
        self.refs[label] = ref

    def remove(self, label: int) -> None:
        if self.refs.pop(label, None) is not None:
            self.graph.mark_deleted(label)
            self.free += 1


class VectorIndex:
    def __init__(self, dim: int, clock: Clock, *, max_entries: int) -> None:
        import hnswlib  # deferred: the `semantic` extra

        self._hnswlib = hnswlib
        self._dim = dim
        self._clock = clock
        self._max_entries = max_entries
        self._partitions: dict[str, _Partition] = {}
        self._used: OrderedDict[int, str] = OrderedDict()  # label -> partition, least recent first
        self._labels: dict[tuple[str, str], int] = {}  # (partition, key) -> label
        self._next = 0

    def __len__(self) -> int:
        return len(self._used)

    def add(self, partition: str, vector: Any, ref: Ref) -> None:
        old = self._labels.get((partition, ref.key))
        if old is not None:
            self._drop(old)
        while len(self._used) >= self._max_entries:
            self._drop(next(iter(self._used)))
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition(self._hnswlib, self._dim)
        label, self._next = self._next, self._next + 1
        part.add(label, vector, ref)
        self._used[label] = partition
        self._labels[(partition, ref.key)] = label

    def nearest(self, partition: str, vector: Any, k: int = 4) -> list[tuple[float, int, Ref]]:
        """Up to ``k`` live entries of ``partition``, most similar first, as (cosine, label, ref)."""
        part = self._partitions.get(partition)
        if part is None or not part.refs:
            return []
        labels, distances = part.graph.knn_query(vector, k=min(k, len(part.refs)))
        now = self._clock.wall()
        found = []
        for label, distance in zip(labels[0].tolist(), distances[0].tolist(), strict=True):
            ref = part.refs.get(label)
            if ref is None:
                continue
            if ref.expires <= now:
                self._drop(label)
                continue
            found.append((1.0 - distance, label, ref))
        return found

    def clear(self) -> None:
        self._partitions.clear()
        self._used.clear()
        self._labels.clear()

    def touch(self, label: int) -> None:
        """``label`` was served: the most recently used now."""
        if label in self._used:
            self._used.move_to_end(label)

    def remove(self, label: int) -> None:
        self._drop(label)

    def _drop(self, label: int) -> None:
        partition = self._used.pop(label, None)
        if partition is None:
            return
        part = self._partitions[partition]
        ref = part.refs.get(label)
        if ref is not None:
            self._labels.pop((partition, ref.key), None)
        part.remove(label)
        if not part.refs:
            del self._partitions[partition]
