"""The rate-limit store's small Redis connection: the RESP codec as tables, and a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.stores.resp import Connection, RedisDown, ReplyError, encode, parse
from tests.e2e.gateway import free_port
from tests.services import require


def test_encode_floats_exactly() -> None:
    assert encode("EVALSHA", 1, 0.1) == b"*3\r\n$7\r\nEVALSHA\r\n$1\r\n1\r\n$3\r\n0.1\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"+OK\r\n", (b"OK", 5)),
        (b":42\r\n", (42, 5)),
        (b"$3\r\nabc\r\n", (b"abc", 9)),
        (b"$-1\r\n", (None, 5)),
        (b"*2\r\n$1\r\na\r\n:1\r\n", ([b"a", 1], 15)),
        (b"*1\r\n*1\r\n+x\r\n", ([[b"x"]], 12)),
        (b"$3\r\nab", None),  # incomplete: wait for more
        (b"*2\r\n$1\r\na\r\n", None),
        (b"+O", None),
    ],
)
def test_parse_table(data: bytes, expected: object) -> None:
    assert parse(data) == expected


def test_parse_errors_are_values() -> None:
    found = parse(b"-NOSCRIPT No matching script\r\n")
    assert found is not None
    assert isinstance(found[0], ReplyError) and str(found[0]).startswith("NOSCRIPT")


async def test_pipelined_calls_get_their_own_replies() -> None:
    require(6379, "Redis")
    connection = Connection("redis://127.0.0.1:6379/0", connect_timeout=1)
    try:
        replies = await asyncio.gather(*(connection.call("ECHO", f"m{i}") for i in range(200)))
        assert replies == [f"m{i}".encode() for i in range(200)]
        assert isinstance(await connection.call("NOSUCHCOMMAND"), ReplyError)
        assert await connection.call("PING") == b"PONG"  # an error reply leaves it usable
    finally:
        connection.close()


async def test_nothing_listening_is_redis_down() -> None:
    connection = Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    with pytest.raises(RedisDown):
        await connection.call("PING")


async def test_a_cancelled_caller_leaves_the_others_alone() -> None:
    require(6379, "Redis")
    connection = Connection("redis://127.0.0.1:6379/0", connect_timeout=1)
    try:
        await connection.call("PING")
        tasks = [asyncio.create_task(connection.call("ECHO", f"m{i}")) for i in range(50)]
        await asyncio.sleep(0)  # every call is written; no reply has been read yet
        tasks[10].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[10], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 10] == [
            f"m{i}".encode() for i in range(50) if i != 10
        ]
        assert await connection.call("ECHO", "after") == b"after"
    finally:
        connection.close()
