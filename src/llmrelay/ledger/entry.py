"""What the ledger holds and how it is asked: a request's row, a usage query, a report row.

Times are wall-clock seconds (UTC epoch). ``cost`` is ``None`` when the answering target's price is
unknown (reports count such rows as zero and say how many there were). ``tags`` are the request's
(``x-llmrelay-tags``, request ``metadata``) and the key's metadata (which wins on a clash).
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from llmrelay.errors import InvalidRequest


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    at: float
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    alias: str | None = None
    target: str | None = None
    model: str | None = None
    """The provider's model that answered (the alias is what the caller asked for)."""
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    status: int = 200


Group = Literal["key", "user", "team", "model", "alias", "target", "day"]
GROUPS: tuple[str, ...] = ("key", "user", "team", "model", "alias", "target", "day", "tag:<name>")
_TAG_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class UsageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Rows with ``since <= at < until`` (either open), grouped by one dimension or a tag's value."""

    group_by: Group | None = None
    tag: str | None = None
    """Group by this tag's value instead (``group_by=tag:<name>``)."""
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(
        cls, group_by: str | None, since: float | None = None, until: float | None = None
    ) -> UsageQuery:
        """From the API's ``group_by`` (``key``, ..., ``tag:feature``); :class:`InvalidRequest` else."""
        if group_by is None or group_by == "":
            return cls(since=since, until=until)
        if group_by.startswith("tag:"):
            name = group_by[4:]
            if not _TAG_NAME.fullmatch(name):
                raise InvalidRequest(f"invalid tag name in group_by={group_by!r}", param="group_by")
            return cls(tag=name, since=since, until=until)
        if group_by not in GROUPS:
            raise InvalidRequest(
                f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}", param="group_by"
            )
        return cls(group_by=group_by, since=since, until=until)  # type: ignore[arg-type]

    @property
    def label(self) -> str | None:
        return f"tag:{self.tag}" if self.tag is not None else self.group_by


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """One group of a report (``group`` is ``None`` for rows without that dimension, or the total)."""

    group: str | None
    requests: int
    errors: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced: int
    """Requests whose cost is unknown (counted as zero in ``cost_usd``)."""
