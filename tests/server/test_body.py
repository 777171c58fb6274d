"""``read_body``: a client that leaves mid-body ends the request as ``client_closed`` (499), not a 500."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.types import Message

from llmrelay.config import ServerConfig
from llmrelay.errors import RelayError
from llmrelay.server.body import read_body
from llmrelay.server.disconnect import CLIENT_CLOSED


async def test_a_client_that_leaves_mid_body_is_client_closed() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"model"', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"100")]}
    with pytest.raises(RelayError) as caught:
        await read_body(Request(scope, receive), ServerConfig())
    assert caught.value.status == CLIENT_CLOSED and caught.value.code == "client_closed"
