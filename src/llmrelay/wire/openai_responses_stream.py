"""The Responses API's typed stream events, from canonical chunks. Pure.

Event order, as OpenAI sends it (each event carries ``type`` and a ``sequence_number`` from 0)::

    response.created, response.in_progress
    per output item:  response.output_item.added
      message:        response.content_part.added, response.output_text.delta ...,
                      response.output_text.done, response.content_part.done
      function call:  response.function_call_arguments.delta ..., response.function_call_arguments.done
                      response.output_item.done
    response.completed (or response.incomplete when the answer was cut; response.failed on error)

An item is closed when the next one starts (providers stream their parts one after another). Item
ids and the final ``response`` come from :mod:`llmrelay.wire.openai_responses_output`, so the last event
equals the unary answer for the same canonical response. Reasoning deltas are not sent (see
:func:`~llmrelay.wire.openai_responses_output.output_items`).
"""

from __future__ import annotations

from typing import Any

from llmrelay.errors import RelayError
from llmrelay.types import ChatChunk, ToolCallDelta, ToolCallPart
from llmrelay.wire.call_ids import with_signature
from llmrelay.wire.openai_responses_output import (
    call_item,
    call_item_id,
    message_id,
    output_text,
    response_object,
    text_item,
)

Event = tuple[str, dict[str, Any]]


class _Call:
    __slots__ = ("arguments", "call_id", "id", "name", "output_index")

    def __init__(self, id: str, call_id: str, name: str, output_index: int) -> None:
        self.id, self.call_id, self.name, self.output_index = id, call_id, name, output_index
        self.arguments: list[str] = []


class ResponsesStreamEncoder:
    """Canonical chunks -> ``response.*`` events for one stream."""

    def __init__(self, echo: dict[str, Any], *, id: str, model: str, created_at: int) -> None:
        self._echo = echo
        self._id = id
        self._model = model
        self._created_at = created_at
        self._sequence = 0
        self._started = False
        self._items = 0  # output items opened so far
        self._text: list[str] | None = None  # the open message item's text
        self._text_index = -1
        self._calls: dict[int, _Call] = {}  # by the canonical delta index
        self._open: _Call | None = None

    def feed(self, chunk: ChatChunk) -> list[Event]:
        events = self._start()
        if chunk.text:
            if self._text is None:
                events += self._close()
                events += self._open_text()
            assert self._text is not None
            self._text.append(chunk.text)
            events.append(
                self._event("response.output_text.delta", **self._text_ref(), delta=chunk.text, logprobs=[])
            )
        for delta in chunk.tool_calls:
            events += self._call_delta(delta)
        return events

    def finish(self, body: dict[str, Any]) -> list[Event]:
        """Close what is open and end with ``body``, the whole Response
        (:func:`~llmrelay.wire.openai_responses_output.encode_response` of the stream's aggregate)."""
        events = self._start()
        if not self._items:  # an empty answer is still one (empty) message item
            events += self._open_text()
        events += self._close()
        kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=body))
        return events

    def fail(self, err: RelayError) -> list[Event]:
        """``response.failed`` after a failure past the commit point (the deltas sent so far were
        all there is; the failed response lists no output)."""
        code = "rate_limit_exceeded" if err.status == 429 else "server_error"
        body = response_object(
            self._echo,
            id=self._id,
            model=self._model,
            created_at=self._created_at,
            status="failed",
            output=[],
            error={"code": code, "message": err.message},
        )
        return [*self._start(), self._event("response.failed", response=body)]

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        body = response_object(
            self._echo,
            id=self._id,
            model=self._model,
            created_at=self._created_at,
            status="in_progress",
            output=[],
        )
        return [
            self._event("response.created", response=body),
            self._event("response.in_progress", response=body),
        ]

    def _open_text(self) -> list[Event]:
        self._text, self._text_index = [], self._items
        self._items += 1
        item = text_item(self._id, "", "in_progress")
        return [
            self._event("response.output_item.added", output_index=self._text_index, item=item),
            self._event("response.content_part.added", **self._text_ref(), part=output_text("")),
        ]

    def _call_delta(self, delta: ToolCallDelta) -> list[Event]:
        events: list[Event] = []
        call = self._calls.get(delta.index)
        if call is None:
            events += self._close()
            call_id = with_signature(delta.id or f"call_{delta.index}", delta.meta)
            call = _Call(call_item_id(self._id, len(self._calls)), call_id, delta.name or "", self._items)
            self._calls[delta.index] = call
            self._items += 1
            self._open = call
            part = ToolCallPart(id=call_id, name=call.name, arguments="")
            item = call_item(self._id, len(self._calls) - 1, part, "in_progress")
            events.append(
                self._event("response.output_item.added", output_index=call.output_index, item=item)
            )
        if delta.arguments:
            call.arguments.append(delta.arguments)
            if call is self._open:
                events.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=call.id,
                        output_index=call.output_index,
                        delta=delta.arguments,
                    )
                )
        return events

    def _close(self) -> list[Event]:
        if self._text is not None:
            text = "".join(self._text)
            ref = self._text_ref()
            self._text = None
            item = text_item(self._id, text, "completed")
            return [
                self._event("response.output_text.done", **ref, text=text, logprobs=[]),
                self._event("response.content_part.done", **ref, part=output_text(text)),
                self._event("response.output_item.done", output_index=ref["output_index"], item=item),
            ]
        call, self._open = self._open, None
        if call is None:
            return []
        arguments = "".join(call.arguments) or "{}"
        item = {
            "type": "function_call",
            "id": call.id,
            "call_id": call.call_id,
            "name": call.name,
            "arguments": arguments,
            "status": "completed",
        }
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=call.id,
                output_index=call.output_index,
                name=call.name,
                arguments=arguments,
            ),
            self._event("response.output_item.done", output_index=call.output_index, item=item),
        ]

    def _text_ref(self) -> dict[str, Any]:
        return {"item_id": message_id(self._id), "output_index": self._text_index, "content_index": 0}

    def _event(self, kind: str, **fields: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1
        return event
