"""The rate-limit store's small Redis connection: the RESP codec as tables, and a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from llmrelay.stores.resp import Connection, RedisDown, Reply, ReplyError, encode, parse
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


class _SendsBetweenAuthAndSelect(Connection):
    """Tries to send a command at the moment AUTH is answered and SELECT not yet asked."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(url, connect_timeout=5, call_timeout=5)
        self.key = key
        self.early: asyncio.Future[Reply] | None = None

    def _hello(self) -> Iterator[tuple[str, ...]]:  # type: ignore[override]
        for n, command in enumerate(super()._hello()):
            if n == 1:
                self.early = self.send("SET", self.key, "x")
            yield command


async def test_no_call_goes_out_before_the_connection_has_logged_in_and_selected_its_db() -> None:
    """AUTH and SELECT are answered one after the other: a call that found the connection
    published between the two ran on database 0."""
    require(6379, "Redis")
    key = f"llmrelay-test-hello-{id(object())}"
    conn = _SendsBetweenAuthAndSelect("redis://default:any@127.0.0.1:6379/5", key)
    db0 = Connection("redis://127.0.0.1:6379/0", connect_timeout=5, call_timeout=5)
    try:
        assert await conn.call("PING") == b"PONG"
        if conn.early is None:  # refused while connecting: sent now, on the selected database
            assert await conn.call("SET", key, "x") == b"OK"
        else:
            await conn.early
        assert await db0.call("EXISTS", key) == 0
        assert await conn.call("GET", key) == b"x"
    finally:
        await conn.call("DEL", key)
        await db0.call("DEL", key)
        conn.close()
        db0.close()
