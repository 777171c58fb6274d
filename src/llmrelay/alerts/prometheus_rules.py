"""The configured alert rules as a Prometheus rules file (``llmrelay alerts rules``), for users
who run Prometheus and Alertmanager instead of (or beside) the in-process evaluator. Each rule
becomes one PromQL alert over the same metrics and window, with the same threshold."""

from __future__ import annotations

from typing import Any

from llmrelay.alerts.rules import CACHE_HITS, CACHE_LOOKUPS, LIMIT_REFUSALS, AlertRule, AlertsConfig


def expression(rule: AlertRule) -> str:
    scope = f'alias="{rule.alias}"' if rule.alias else ""
    window = f"{int(rule.window)}s"

    def select(name: str, *extra: str) -> str:
        matchers = ",".join(m for m in (scope, *extra) if m)
        return f"{name}{{{matchers}}}" if matchers else name

    match rule.kind:
        case "error_rate":
            errors = select("llmrelay_requests_total", 'status_class="5xx"')
            calls = select("llmrelay_requests_total")
            return (
                f"sum(increase({errors}[{window}])) / sum(increase({calls}[{window}])) > {rule.threshold:g}"
            )
        case "p95_latency" | "p95_overhead":
            family = "request_duration" if rule.kind == "p95_latency" else "overhead"
            buckets = select(f"llmrelay_{family}_seconds_bucket")
            return f"histogram_quantile(0.95, sum by (le) (rate({buckets}[{window}]))) > {rule.threshold:g}"
        case "spend":
            return f"sum(increase({select('llmrelay_cost_usd_total')}[{window}])) > {rule.threshold:g}"
        case "spend_growth":
            spend = select("llmrelay_cost_usd_total")
            return (
                f"sum(increase({spend}[{window}])) / sum(increase({spend}[{window}] offset {window}))"
                f" > {rule.threshold:g}"
            )
        case "circuit_open":
            return f"sum(llmrelay_circuit_open) > {rule.threshold:g}"
        case "rate_limit_saturation":
            refused = select("llmrelay_rejections_total", f'reason=~"{"|".join(LIMIT_REFUSALS)}"')
            calls = select("llmrelay_requests_total")
            return (
                f"sum(increase({refused}[{window}])) / sum(increase({calls}[{window}])) > {rule.threshold:g}"
            )
        case "budget_used":
            which = f'{{budget="{rule.budget}"}}' if rule.budget else ""
            return (
                f"llmrelay_budget_spent_usd{which} / llmrelay_budget_limit_usd{which} >= {rule.threshold:g}"
            )
        case "rate_limit_headroom":
            return f"llmrelay_ratelimit_remaining / llmrelay_ratelimit_limit < {rule.threshold:g}"
        case "cache_hit_rate" | "cache_hit_rate_drop":
            hits = select("llmrelay_cache_lookups_total", f'outcome=~"{"|".join(CACHE_HITS)}"')
            lookups = select("llmrelay_cache_lookups_total", f'outcome=~"{"|".join(CACHE_LOOKUPS)}"')

            def rate(offset: str = "") -> str:
                return (
                    f"(sum(increase({hits}[{window}]{offset})) / sum(increase({lookups}[{window}]{offset})))"
                )

            if rule.kind == "cache_hit_rate":
                return f"{rate()} < {rule.threshold:g}"
            return f"{rate()} / {rate(f' offset {window}')} < {rule.threshold:g}"


_WORDS = {"above": "above", "reaches": "at or above", "below": "below"}


def rules_file(config: AlertsConfig) -> dict[str, Any]:
    """The ``groups:`` document Prometheus loads (``rule_files``)."""
    return {
        "groups": [
            {
                "name": "llmrelay",
                "rules": [
                    {
                        "alert": rule.name,
                        "expr": expression(rule),
                        "labels": {"severity": "warning", "source": "llmrelay"},
                        "annotations": {
                            "summary": f"llmrelay {rule.kind}"
                            + (f" for {rule.alias}" if rule.alias else "")
                            + (f" of {rule.budget}" if rule.budget else "")
                            + f" {_WORDS[rule.direction]} {rule.threshold:g} over {int(rule.window)}s"
                        },
                    }
                    for rule in config.rules
                ],
            }
        ]
    }
