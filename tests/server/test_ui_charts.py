"""The dashboard's drawing and data helpers: legends that never overlap, share bars, breakdowns."""

from __future__ import annotations

import itertools
import re

from llmrelay.server.ui.charts import CHAR_WIDTH, line_chart, share_bar
from llmrelay.telemetry.snapshots import increase_by


def test_long_legends_wrap_onto_rows_instead_of_overlapping() -> None:
    names = [f"static_key_number_{i} (tier) requests" for i in range(4)]
    svg = line_chart("t", [0.0, 1.0], [(name, [0.5, 0.25]) for name in names], unit="%")
    placed = [
        (float(x), float(y), text)
        for x, y, text in re.findall(
            r'<text x="([\d.]+)" y="([\d.]+)" font-size="11"[^>]*>([^<]*)</text>', svg
        )
    ]
    assert len(placed) == 4 and all(text.endswith(": 25%") for _, _, text in placed)
    rows: dict[float, list[tuple[float, float]]] = {}
    for x, y, text in placed:
        rows.setdefault(y, []).append((x, x + len(text) * CHAR_WIDTH))
    assert len(rows) > 1  # they did not fit on one row
    for spans in rows.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    height = int(re.search(r'height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert max(y for y in rows) < height


def test_share_bars_are_clamped_and_coloured_by_room_left() -> None:
    assert 'width="160.0" height="12" fill="#059669"' in share_bar(1.7)
    assert 'width="0.0" height="12" fill="#dc2626"' in share_bar(-1)
    assert 'fill="#d97706"' in share_bar(0.3)


def test_increase_by_a_label_counts_a_restarted_counter_from_zero() -> None:
    def tokens(**by_key: float) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return {
            ("llmrelay_tokens_total", frozenset({("key", k), ("kind", "input")})): v
            for k, v in by_key.items()
        }

    assert increase_by(tokens(a=10, b=5), tokens(a=15, b=5, c=2), "llmrelay_tokens_total", "key") == {
        "a": 5,
        "c": 2,
    }
    assert increase_by(tokens(a=10), tokens(a=3), "llmrelay_tokens_total", "key") == {"a": 3}
