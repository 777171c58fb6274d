"""The usage report as SQL, for SQLite and PostgreSQL: one ``GROUP BY`` over the ledger table.

The two dialects differ only in placeholders, how a tag's value is read from the JSON ``tags``
column and how an epoch becomes a UTC day; everything else is one statement shape, so the two
backends cannot drift apart. Values (tag names, bounds) are always bound parameters.
"""

from __future__ import annotations

from typing import Any, Literal

from llmrelay.ledger.entry import UsageQuery, UsageRow

Dialect = Literal["sqlite", "postgres"]

_COLUMNS = {
    "key": "key_id",
    "user": "user_id",
    "team": "team",
    "model": "model",
    "alias": "alias",
    "target": "target",
}
_SUMS = (
    "count(*), count(*) FILTER (WHERE status >= 400),"
    " coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0),"
    " coalesce(sum(cache_write_input_tokens), 0), coalesce(sum(output_tokens), 0),"
    " coalesce(sum(cost), 0), count(*) FILTER (WHERE cost IS NULL)"
)


def usage_sql(query: UsageQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    """The statement and its parameters; each result row is (group, *sums) as :func:`usage_row` reads."""
    args: list[Any] = []

    def bind(value: Any) -> str:
        args.append(value)
        return "?" if dialect == "sqlite" else f"${len(args)}"

    if query.tag is not None:
        if dialect == "sqlite":
            path = '$."' + query.tag + '"'
            group = f"json_extract(tags, {bind(path)})"
        else:
            group = f"(tags ->> {bind(query.tag)})"
    elif query.group_by == "day":
        group = (
            "strftime('%Y-%m-%d', at, 'unixepoch')"
            if dialect == "sqlite"
            else "to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        )
    elif query.group_by is not None:
        group = _COLUMNS[query.group_by]
    else:
        group = "NULL"
    where = []
    if query.since is not None:
        where.append(f"at >= {bind(query.since)}")
    if query.until is not None:
        where.append(f"at < {bind(query.until)}")
    sql = f"SELECT {group} AS grp, {_SUMS} FROM ledger"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if query.label is not None:
        sql += " GROUP BY grp ORDER BY 8 DESC, grp"  # most expensive first
    return sql, args


def usage_row(row: Any) -> UsageRow:
    group = row[0]
    return UsageRow(
        group=None if group is None else str(group),
        requests=int(row[1]),
        errors=int(row[2]),
        input_tokens=int(row[3]),
        cached_input_tokens=int(row[4]),
        cache_write_input_tokens=int(row[5]),
        output_tokens=int(row[6]),
        cost_usd=float(row[7]),
        unpriced=int(row[8]),
    )
