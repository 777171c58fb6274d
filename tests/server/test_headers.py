"""The per-call header map answers as Starlette's ``Headers.get`` does."""

from __future__ import annotations

from starlette.requests import Request

from llmrelay.server.headers import header_map


def test_the_first_of_a_repeated_header_wins_and_values_are_latin_1() -> None:
    raw = [
        (b"authorization", b"Bearer first"),
        (b"x-llmrelay-tags", b"team=caf\xe9"),
        (b"authorization", b"Bearer second"),
    ]
    request = Request({"type": "http", "headers": raw})
    found = header_map(request)
    assert found == {"authorization": "Bearer first", "x-llmrelay-tags": "team=café"}
    for name in ("authorization", "x-llmrelay-tags", "x-request-id"):
        assert found.get(name) == request.headers.get(name)
