"""One upstream read as a batch of canonical chunks (pure).

A provider reads its SSE stream in network-sized pieces; every piece may hold several events, and
the events become one batch for :class:`~llmrelay.streams.ChatStream`, which hands ready chunks to
its reader together. An error event can arrive in the same read as good chunks before it: those
chunks were produced first, so they are delivered first (crossing the commit point) and the error
follows, exactly as if the events had arrived one read apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llmrelay.errors import RelayError
from llmrelay.types import ChatChunk
from llmrelay.wire.sse import Event


def decode_batch(
    events: Iterable[Event], decode: Callable[[Event], Iterable[ChatChunk]]
) -> tuple[list[ChatChunk], RelayError | None]:
    """The chunks of ``events`` in order, and the error that stopped them (``None`` if none did)."""
    chunks: list[ChatChunk] = []
    try:
        for event in events:
            chunks.extend(decode(event))
    except RelayError as err:
        return chunks, err
    return chunks, None
