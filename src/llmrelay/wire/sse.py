"""Server-sent events: an incremental decoder for upstream streams and encoders for ours.

Pure: no I/O. The decoder follows the WHATWG event-stream rules that matter for LLM APIs: ``\\n``,
``\\r\\n`` or ``\\r`` line ends, multi-line ``data`` joined by ``\\n``, comments (``:``) ignored, an
event dispatched at a blank line, bytes split anywhere (even inside a UTF-8 sequence).
"""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    event: str
    data: str


class SSEDecoder:
    """Feed raw bytes, get complete events. Call :meth:`flush` at end of stream."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        events: list[Event] = []
        while True:
            line, sep, rest = _split_line(self._buffer)
            if not sep:
                return events
            self._buffer = rest
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)

    def flush(self) -> list[Event]:
        """Dispatch what is pending when the stream ends without a final blank line."""
        events = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self._line(line.decode("utf-8", errors="replace"))
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch() if self._data or self._event else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> Event:
        event = Event(self._event or "message", "\n".join(self._data))
        self._event = ""
        self._data = []
        return event


def _split_line(buffer: bytes) -> tuple[bytes, bytes, bytes]:
    """Split at the first line end. A trailing ``\\r`` waits for the next byte (it may be ``\\r\\n``)."""
    n = buffer.find(b"\n")
    r = buffer.find(b"\r")
    if r == -1 or (n != -1 and n < r):
        if n == -1:
            return buffer, b"", b""
        return buffer[:n], b"\n", buffer[n + 1 :]
    if r == len(buffer) - 1:
        return buffer, b"", b""
    if buffer[r + 1 : r + 2] == b"\n":
        return buffer[:r], b"\r\n", buffer[r + 2 :]
    return buffer[:r], b"\r", buffer[r + 1 :]


def encode_data(data: bytes) -> bytes:
    """One unnamed event (OpenAI style): ``data: <json>\\n\\n``."""
    return b"data: " + data + b"\n\n"


def encode_event(event: str, data: bytes) -> bytes:
    """One named event (Anthropic style)."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


HEARTBEAT = b": keep-alive\n\n"
