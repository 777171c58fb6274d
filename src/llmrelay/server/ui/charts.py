"""Line charts as SVG, drawn on the server: no chart library, no script, nothing from a CDN.

Colours and strokes are SVG attributes, not ``style``, so the page's CSP needs no inline styles.
Every text that reaches the SVG is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 560, 170, 56, 22, 26
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706")
LEGEND_ROW, CHAR_WIDTH, LEGEND_GAP = 14, 6.3, 16
"""A legend entry is laid out by its length (11 px text), wrapping onto another row when full."""


def line_chart(
    title: str,
    times: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
) -> str:
    """``series`` are (name, values aligned with ``times``); ``None`` values leave a gap."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    top = _nice(max(values)) if values else 1.0
    inner_w, inner_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_TOP - PAD_BOTTOM
    legends = _legends(series, unit) if len(times) >= 2 and values else []
    height = HEIGHT + LEGEND_ROW * max((row for _, _, row, _ in legends), default=0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{PAD_LEFT}" y="16" font-size="13" font-weight="600" fill="#111">{escape(title)}</text>',
    ]
    for i in range(3):
        y = PAD_TOP + inner_h * i / 2
        label = _format(top * (1 - i / 2), unit)
        parts.append(f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#555">'
            f"{escape(label)}</text>"
        )
    if len(times) < 2 or not values:
        parts.append(
            f'<text x="{PAD_LEFT + inner_w / 2:.0f}" y="{PAD_TOP + inner_h / 2:.0f}" font-size="12"'
            ' text-anchor="middle" fill="#888">no data yet</text>'
        )
    else:
        start, span = times[0], max(times[-1] - times[0], 1e-9)
        for n, (_, vs) in enumerate(series):
            colour = COLOURS[n % len(COLOURS)]
            points = [
                f"{PAD_LEFT + inner_w * (t - start) / span:.1f},{PAD_TOP + inner_h * (1 - v / top):.1f}"
                for t, v in zip(times, vs, strict=True)
                if v is not None and math.isfinite(v)
            ]
            if points:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>'
                )
        for legend, x, row, colour in legends:
            parts.append(
                f'<text x="{x:.0f}" y="{HEIGHT - 6 + LEGEND_ROW * row}" font-size="11" fill="{colour}">'
                f"{escape(legend)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _legends(
    series: Sequence[tuple[str, Sequence[float | None]]], unit: str
) -> list[tuple[str, float, int, str]]:
    """Each series' legend (its name and last value), its x, its row and its colour."""
    placed = []
    x, row = float(PAD_LEFT), 0
    for n, (name, vs) in enumerate(series):
        last = next((v for v in reversed(vs) if v is not None and math.isfinite(v)), None)
        legend = f"{name}: {_format(last, unit)}" if last is not None else name
        width = len(legend) * CHAR_WIDTH
        if x > PAD_LEFT and x + width > WIDTH - 8:
            x, row = float(PAD_LEFT), row + 1
        placed.append((legend, x, row, COLOURS[n % len(COLOURS)]))
        x += width + LEGEND_GAP
    return placed


def share_bar(share: float, *, width: int = 160) -> str:
    """A horizontal bar of ``share`` (0..1) of ``width``: green with room left, amber under a
    half, red under a tenth."""
    share = min(1.0, max(0.0, share))
    colour = "#059669" if share >= 0.5 else "#d97706" if share >= 0.1 else "#dc2626"
    return (
        f'<svg class="bar" role="img" aria-label="{share:.0%} left" viewBox="0 0 {width} 12" width="{width}"'
        f' height="12" xmlns="http://www.w3.org/2000/svg"><rect width="{width}" height="12" fill="#e5e7eb"/>'
        f'<rect width="{width * share:.1f}" height="12" fill="{colour}"/></svg>'
    )


def _nice(value: float) -> float:
    """A round upper bound at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _format(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "$":
        return f"${value:.4g}"
    if unit == "%":
        return f"{value * 100:.3g}%"
    return f"{value:.3g}{unit}"
