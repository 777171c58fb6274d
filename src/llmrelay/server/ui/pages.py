"""The dashboard's HTML: a layout and one function per page; every value is escaped here.

No script anywhere (the CSP forbids it): navigation is links, actions are forms that carry the
session's CSRF token, charts are inline SVG from :mod:`.charts`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from llmrelay.server.ui.charts import line_chart, share_bar
from llmrelay.server.ui.history import Point
from llmrelay.telemetry.metrics import RequestRecord

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#111;background:#f8fafc}
header{background:#0f172a;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center}
header a{color:#cbd5e1;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}main{padding:16px 20px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left}
th{background:#f1f5f9}.ok{color:#059669}.bad{color:#dc2626}.warn{color:#d97706}
.secret{font-family:monospace;background:#fef9c3;padding:8px;border:1px solid #facc15;display:inline-block}
form.inline{display:inline}input,button{font:inherit;padding:3px 8px}h2{font-size:16px;margin:18px 0 8px}
.login{max-width:360px;margin:80px auto;background:#fff;padding:24px;border:1px solid #e2e8f0;
border-radius:8px}
"""

NAV = (
    ("/ui", "Overview"),
    ("/ui/usage", "Usage"),
    ("/ui/limits", "Limits"),
    ("/ui/requests", "Requests"),
    ("/ui/keys", "Keys"),
)
SHOWN = 3
"""Series a breakdown chart draws by name (the largest); the rest add up to ``other``."""


def layout(title: str, body: str, *, csrf: str, active: str) -> str:
    links = "".join(
        f'<a href="{href}"{" class=on" if href == active else ""}>{escape(name)}</a>' for href, name in NAV
    )
    logout = (
        '<form method="post" action="/ui/logout">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}"><button>Log out</button></form>'
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · llmrelay</title>"
        '<link rel="stylesheet" href="/ui/ui.css"></head><body>'
        f"<header><strong>llmrelay</strong>{links}{logout}</header><main>{body}</main></body></html>"
    )


def login(token: str, error: str | None = None) -> str:
    problem = f'<p class="bad">{escape(error)}</p>' if error else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Log in · llmrelay</title>"
        '<link rel="stylesheet" href="/ui/ui.css"></head><body><div class="login">'
        f"<h1>llmrelay</h1>{problem}"
        '<form method="post" action="/ui/login">'
        f'<input type="hidden" name="csrf" value="{escape(token)}">'
        '<p><label>Master key<br><input type="password" name="master_key" autocomplete="current-password"'
        " required autofocus></label></p><p><button>Log in</button></p></form></div></body></html>"
    )


def overview(
    points: Sequence[Point],
    circuits: Sequence[Mapping[str, Any]],
    errors: Mapping[str, float],
    spend: Mapping[str, float],
    tokens: Mapping[str, float],
) -> str:
    times = [p.at for p in points]
    charts = [
        line_chart(
            "Requests per second",
            times,
            [("all", [p.requests for p in points]), ("5xx", [p.errors for p in points])],
            unit="/s",
        ),
        line_chart(
            "Latency", times, [("p50", [p.p50 for p in points]), ("p95", [p.p95 for p in points])], unit="s"
        ),
        line_chart("llmrelay overhead p95", times, [("p95", [p.overhead_p95 for p in points])], unit="s"),
        line_chart("Tokens per second", times, [("tokens", [p.tokens for p in points])], unit="/s"),
        line_chart("Spend per sample", times, [("USD", [p.spend for p in points])], unit="$"),
    ]
    cards = "".join(f'<div class="card">{chart}</div>' for chart in charts)
    health = "".join(
        f"<tr><td>{escape(c['target'])}</td><td class={_state_class(c['state'])}>{escape(c['state'])}</td>"
        f"<td>{int(c['recent_failures'])} / {int(c['recent_calls'])}</td><td>{int(c['trips'])}</td></tr>"
        for c in circuits
    )
    return (
        f'<div class="grid">{cards}</div>'
        "<h2>Targets</h2><table><tr><th>target</th><th>circuit</th><th>recent failures / calls</th>"
        f"<th>trips</th></tr>{health}</table>"
        f"<h2>Upstream errors by type</h2>{_totals(errors, 'type', 'errors')}"
        f"<h2>Spend by team and key (USD)</h2>{_totals(spend, 'team / key', 'USD')}"
        f"<h2>Tokens by kind</h2>{_totals(tokens, 'kind', 'tokens')}"
    )


def usage(points: Sequence[Point], dimensions: Sequence[str], ledger: Sequence[Mapping[str, Any]]) -> str:
    """Tokens and spend over time by each dimension (the ring buffer), and the ledger's totals by
    the model that answered."""
    times = [p.at for p in points]
    charts = []
    for dimension in dimensions:
        label = _DIMENSION_NAMES.get(dimension, f"tag {dimension}")
        tokens = _breakdown([p.tokens_by.get(dimension, {}) for p in points])
        spend = _breakdown([p.spend_by.get(dimension, {}) for p in points])
        charts.append(line_chart(f"Tokens per second by {label}", times, tokens, unit="/s"))
        charts.append(line_chart(f"Spend per sample by {label}", times, spend, unit="$"))
    cards = "".join(f'<div class="card">{chart}</div>' for chart in charts)
    rows = "".join(
        f"<tr><td>{escape(row['group'] or '(no answer)')}</td><td>{row['requests']}</td>"
        f"<td>{row['input_tokens']}</td><td>{row['output_tokens']}</td><td>{row['cost_usd']:.6f}</td></tr>"
        for row in ledger
    )
    table = (
        "<table id=ledger><tr><th>model</th><th>requests</th><th>input tokens</th><th>output tokens</th>"
        f"<th>USD</th></tr>{rows}</table>"
        if ledger
        else "<p>none yet (or the usage ledger is off)</p>"
    )
    return (
        f'<div class="grid">{cards}</div>'
        f"<h2>Usage ledger, last 24 hours, by the model that answered</h2>{table}"
    )


def limits(points: Sequence[Point], rows: Sequence[Mapping[str, Any]]) -> str:
    """Rate-limit headroom now per key, tier and kind, and its share left over time."""
    lowest = sorted(
        {name for p in points for name in p.headroom}, key=lambda n: points[-1].headroom.get(n, 1.0)
    )
    series = [(name, [p.headroom.get(name) for p in points]) for name in lowest[: SHOWN + 1]]
    chart = line_chart("Rate-limit headroom left", [p.at for p in points], series, unit="%")
    body = "".join(
        f"<tr><td>{escape(r['key'] or '-')}</td><td>{escape(r['tier'])}</td><td>{escape(r['kind'])}</td>"
        f"<td>{int(r['limit'])}</td><td>{int(r['remaining'])}</td>"
        f"<td>{share_bar(r['remaining'] / r['limit'])}</td>"
        f"<td>{r['full_in']:.0f} s</td><td>{int(r['refused'])}</td></tr>"
        for r in rows
    )
    table = (
        "<table id=headroom><tr><th>key</th><th>tier</th><th>kind</th><th>limit / min</th><th>left now</th>"
        f"<th></th><th>full again in</th><th>refused (429)</th></tr>{body}</table>"
        if rows
        else "<p>no call under a tier's rate limit yet</p>"
    )
    return (
        f'<div class="grid"><div class="card">{chart}</div></div>'
        "<h2>Tenant rate limits: the tightest limit of each key's latest call, refilled to now</h2>"
        f"{table}"
    )


_DIMENSION_NAMES = {"key": "key", "team": "team", "alias": "model (alias)"}


def _breakdown(by: Sequence[Mapping[str, float]]) -> list[tuple[str, list[float | None]]]:
    """The :data:`SHOWN` largest values' series over the samples ``by`` (an empty name is ``-``),
    the rest added up as ``other``."""
    totals: dict[str, float] = {}
    for sample in by:
        for name, amount in sample.items():
            totals[name] = totals.get(name, 0.0) + amount
    ranked = sorted(totals, key=lambda name: -totals[name])
    shown, rest = ranked[:SHOWN], set(ranked[SHOWN:])
    series: list[tuple[str, list[float | None]]] = [
        (name or "-", [sample.get(name, 0.0) for sample in by]) for name in shown
    ]
    if rest:
        series.append(("other", [sum(v for n, v in sample.items() if n in rest) for sample in by]))
    return series


def requests(records: Sequence[RequestRecord], query: Mapping[str, str]) -> str:
    fields = "".join(
        f'<label>{escape(label)} <input name="{name}" value="{escape(query.get(name, ""))}"></label> '
        for name, label in (
            ("request_id", "request id"),
            ("key", "key id"),
            ("alias", "alias"),
            ("status", "status"),
        )
    )
    rows = "".join(
        f"<tr><td>{time.strftime('%H:%M:%S', time.gmtime(r.at))}</td><td>{escape(r.request_id)}</td>"
        f"<td>{escape(r.key_id or '')}</td><td>{escape(r.model or '')}</td><td>{escape(r.target or '')}</td>"
        f"<td class={'ok' if r.status < 400 else 'bad'}>{r.status}</td><td>{r.seconds * 1000:.1f}</td>"
        f"<td>{'' if r.overhead is None else f'{r.overhead * 1000:.2f}'}</td>"
        f"<td>{'' if r.usage is None else f'{r.usage.input_tokens} / {r.usage.output_tokens}'}</td>"
        f"<td>{'' if r.cost is None else f'{r.cost:.6f}'}</td>"
        f"<td>{escape(r.error or r.outcome or '')}</td></tr>"
        for r in records
    )
    return (
        f'<form method="get" action="/ui/requests">{fields}<button>Search</button></form>'
        "<p>This worker's recent calls, newest first (prompt text is never kept here).</p>"
        "<table><tr><th>time (UTC)</th><th>request id</th><th>key</th><th>model</th><th>target</th>"
        "<th>status</th><th>ms</th><th>overhead ms</th><th>tokens in / out</th><th>USD</th><th>note</th></tr>"
        f"{rows}</table>"
    )


def keys(listed: Sequence[Mapping[str, Any]], csrf: str, *, new_secret: str | None = None) -> str:
    shown = ""
    if new_secret is not None:
        shown = (
            "<p>New secret, shown this once: copy it now.</p>"
            f'<p><span class="secret" id="new-secret">{escape(new_secret)}</span></p>'
        )
    token = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    rows = ""
    for key in listed:
        state = "revoked" if key["revoked_at"] else "active"
        actions = ""
        if not key["revoked_at"]:
            actions = "".join(
                f'<form class="inline" method="post" action="/ui/keys/{escape(key["id"])}/{action}">'
                f"{token}<button>{action}</button></form> "
                for action in ("rotate", "revoke")
            )
        rows += (
            f"<tr><td>{escape(key['id'])}</td><td>{escape(key['name'] or '')}</td>"
            f"<td>{escape(key['display'])}</td><td>{escape(', '.join(key['models']) or 'all')}</td>"
            f"<td>{escape(key['metadata'].get('team', ''))}</td>"
            f"<td class={'bad' if key['revoked_at'] else 'ok'}>{state}</td><td>{actions}</td></tr>"
        )
    return (
        f"{shown}<h2>Create a key</h2>"
        f'<form method="post" action="/ui/keys">{token}'
        '<label>name <input name="name" required></label> '
        '<label>models (comma-separated, empty: all) <input name="models"></label> '
        '<label>team <input name="team"></label> <button>Create</button></form>'
        "<h2>Keys</h2><table><tr><th>id</th><th>name</th><th>key</th><th>models</th><th>team</th>"
        f"<th>state</th><th></th></tr>{rows}</table>"
    )


def _state_class(state: str) -> str:
    return {"closed": "ok", "half_open": "warn"}.get(state, "bad")


def _totals(values: Mapping[str, float], what: str, unit: str) -> str:
    if not values:
        return "<p>none yet</p>"
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{amount:.6g}</td></tr>"
        for name, amount in sorted(values.items(), key=lambda item: -item[1])
    )
    return f"<table><tr><th>{escape(what)}</th><th>{escape(unit)}</th></tr>{rows}</table>"
