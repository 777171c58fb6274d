"""The usage ledger: one row per request (usage, cost, who, what for), written off the hot path.

See :mod:`llmrelay.ledger.writer` (the batched writer the server feeds) and
:mod:`llmrelay.ledger.store` (the Ledger protocol and its backends).
"""

from llmrelay.ledger.entry import GROUPS, LedgerEntry, UsageQuery, UsageRow
from llmrelay.ledger.store import LedgerStore, open_ledger
from llmrelay.ledger.writer import LedgerWriter

__all__ = ["GROUPS", "LedgerEntry", "LedgerStore", "LedgerWriter", "UsageQuery", "UsageRow", "open_ledger"]
