"""A PostgreSQL schema of its own for one test (or module): parallel runs never see each other's rows.

The URL names the schema (``?schema=t_<random>``); the stores create it when they migrate, and it
is dropped, with everything in it, at the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.services import require

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def schema_url(schema: str) -> str:
    return f"{SERVER}?schema={schema}"


@asynccontextmanager
async def pg_schema(prefix: str = "t") -> AsyncIterator[str]:
    """The state URL of a fresh schema on the local server (skipped, or failed under CI, without one)."""
    import asyncpg

    require(5432, "PostgreSQL")
    schema = f"{prefix}_{os.urandom(6).hex()}"
    try:
        yield schema_url(schema)
    finally:
        conn = await asyncpg.connect(SERVER)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
