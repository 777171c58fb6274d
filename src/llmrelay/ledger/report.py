"""The usage report's shapes: its time bounds as given by a caller, JSON, CSV and a terminal table.

``GET /admin/usage`` and ``llmrelay usage`` both read a :class:`~llmrelay.ledger.entry.UsageQuery`
through :func:`parse_time` and answer with :func:`report` (rows, most expensive first, then the
total), as JSON, :func:`to_csv` or :func:`to_table`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.ledger.entry import UsageQuery, UsageRow
from llmrelay.ledger.store import LedgerStore

FIELDS = tuple(UsageRow.__struct_fields__)


def parse_time(text: str | None, param: str) -> float | None:
    """Epoch seconds, an ISO date (``2026-12-01``: its midnight UTC) or an ISO date-time
    (``2026-12-01T10:00:00Z``; without an offset it is UTC)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError as err:
        raise InvalidRequest(
            f"`{param}` must be epoch seconds or an ISO date (2026-12-01) or date-time, not {text[:40]!r}",
            param=param,
        ) from err
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


async def report(store: LedgerStore, query: UsageQuery) -> dict[str, Any]:
    rows = await store.usage(query) if query.label is not None else []
    totals = await store.usage(msgspec.structs.replace(query, group_by=None, tag=None))
    total = totals[0] if totals else None
    return {
        "object": "usage",
        "group_by": query.label,
        "from": query.since,
        "to": query.until,
        "data": [msgspec.to_builtins(row) for row in rows],
        "total": msgspec.to_builtins(total) if total is not None else None,
    }


def to_csv(payload: dict[str, Any]) -> str:
    """One line per group (``group`` named after the grouping), the total last as ``total``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([payload["group_by"] or "group", *FIELDS[1:]])
    for row in payload["data"]:
        writer.writerow([row["group"] if row["group"] is not None else "", *(row[f] for f in FIELDS[1:])])
    if payload["total"] is not None:
        writer.writerow(["total", *(payload["total"][f] for f in FIELDS[1:])])
    return out.getvalue()


def to_table(payload: dict[str, Any]) -> str:
    """Aligned columns for a terminal: the group, requests, errors, tokens in and out, cost."""
    head = [payload["group_by"] or "", "requests", "errors", "input", "cached", "output", "cost_usd"]
    lines = [
        [
            "(none)" if row["group"] is None else row["group"],
            *(
                f"{row[f]:,}"
                for f in ("requests", "errors", "input_tokens", "cached_input_tokens", "output_tokens")
            ),
            f"{row['cost_usd']:.6f}",
        ]
        for row in [*payload["data"], *([{**payload["total"], "group": "total"}] if payload["total"] else [])]
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(head, *lines, strict=True)]
    rendered = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [head, *lines]
    ]
    return "\n".join(rendered)
