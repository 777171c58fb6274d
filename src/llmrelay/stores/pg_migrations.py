"""Versioned PostgreSQL migrations: applied at start-up by ``llmrelay serve`` and on demand by
``llmrelay db migrate``.

Each migration is a version number and SQL, applied once, in order, and recorded in
``llmrelay_migrations``. A run is one transaction holding an advisory lock, so gateways starting
together take turns (the first applies, the others then find nothing to do) and a failed
migration leaves the schema as it was. Running it again is a no-op. Migrations are never edited
once released: a change is a new version. (The SQLite stores create their tables themselves:
SQLite is the single-node default.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

LOCK_ID = 0x6C6C_6D72_656C_6179 & 0x7FFF_FFFF_FFFF_FFFF
"""The advisory lock every llmrelay migration run takes (``llmrelay`` in ASCII, as a bigint)."""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "virtual keys",
        """
        CREATE TABLE virtual_keys (
            id text PRIMARY KEY,
            hash text NOT NULL UNIQUE,
            previous_hash text,
            record bytea NOT NULL,
            version bigint NOT NULL DEFAULT 0,
            created bigserial
        );
        CREATE INDEX virtual_keys_previous ON virtual_keys (previous_hash);
        """,
    ),
    (
        2,
        "usage ledger",
        """
        CREATE TABLE ledger (
            request_id text NOT NULL,
            at double precision NOT NULL,
            key_id text,
            user_id text,
            team text,
            tags jsonb NOT NULL DEFAULT '{}',
            alias text,
            target text,
            model text,
            input_tokens bigint NOT NULL,
            cached_input_tokens bigint NOT NULL,
            cache_write_input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            cost double precision,
            status integer NOT NULL
        );
        CREATE INDEX ledger_at ON ledger USING brin (at);
        """,
    ),
    (
        3,
        "budgets",
        """
        CREATE TABLE budget_spend (
            counter text NOT NULL,
            window_start double precision NOT NULL,
            spent double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (counter, window_start)
        );
        CREATE TABLE budget_holds (
            hold_id text NOT NULL,
            counter text NOT NULL,
            window_start double precision NOT NULL,
            amount double precision NOT NULL,
            expires_at double precision NOT NULL,
            PRIMARY KEY (hold_id, counter)
        );
        CREATE INDEX budget_holds_counter ON budget_holds (counter, window_start);
        """,
    ),
    (
        4,
        "audit log",
        """
        CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            at double precision NOT NULL,
            actor text NOT NULL,
            action text NOT NULL,
            target text,
            details jsonb NOT NULL
        );
        CREATE INDEX audit_log_action ON audit_log (action, id);
        """,
    ),
)


async def apply_migrations(conn: asyncpg.Connection, schema: str | None) -> list[int]:
    """Apply what is pending in ``schema`` (created when missing); the versions applied now."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        if schema is not None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # validated by split_url
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS llmrelay_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in await conn.fetch("SELECT version FROM llmrelay_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO llmrelay_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied.append(version)
    return applied
