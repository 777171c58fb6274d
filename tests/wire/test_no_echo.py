"""A rejected field's value is never echoed in the error: it may be a secret or personal data the
caller put in the wrong place, and error bodies travel to logs, proxies and dashboards."""

from __future__ import annotations

import json

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.wire.anthropic_inbound import decode_messages_request
from llmrelay.wire.openai_embeddings import decode_embedding_request
from llmrelay.wire.openai_inbound import decode_chat_request

SECRET = "4111 1111 1111 1111"
QUOTED = SECRET + " ' - at `$.x`"  # msgspec quotes a value holding ' with " instead
BODIES = [
    (decode_chat_request, {"model": "m", "messages": [{"role": SECRET, "content": "x"}]}),
    (decode_chat_request, {"model": "m", "messages": [{"role": "user", "content": [{"type": SECRET}]}]}),
    (
        decode_chat_request,
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": SECRET}},
    ),
    (
        decode_messages_request,
        {"model": "m", "max_tokens": 1, "messages": [{"role": SECRET, "content": "x"}]},
    ),
    (
        decode_messages_request,
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": SECRET}]}]},
    ),
    (decode_embedding_request, {"model": "m", "input": "x", "encoding_format": SECRET}),
    (decode_embedding_request, {"model": "m", "input": "x", "encoding_format": QUOTED}),
    (
        decode_messages_request,
        {"model": "m", "max_tokens": 1, "messages": [{"role": QUOTED, "content": "x"}]},
    ),
]


@pytest.mark.parametrize(("decode", "body"), BODIES)
def test_an_invalid_value_is_named_by_its_place_not_echoed(decode: object, body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode(json.dumps(body).encode())  # type: ignore[operator]
    assert SECRET not in caught.value.message
    assert caught.value.param in (
        "messages.0.role",
        "messages[0].role",
        "messages.0.content.0.type",
        "messages[0].content[0].type",
        "response_format.type",
        "encoding_format",
    )
