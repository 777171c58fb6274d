"""Config rules msgspec cannot express (cross-field, or bounds of structs defined beside a policy).

Run once by :func:`llmrelay.config.load_config` after the typed decode; each message is one line
that names the offending path (``$.models[0].targets[1].model``), as msgspec's own do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta

from llmrelay.errors import ConfigError, InvalidRequest
from llmrelay.routing.patterns import WILDCARD, is_pattern

if TYPE_CHECKING:
    from llmrelay.config import Config, TargetConfig

KNOWN_PROVIDERS = ("openai", "azure", "anthropic", "gemini", "mock")
PASS_THROUGH_PROVIDERS = ("openai", "azure")
"""Providers that send the request's model when their target has none: a wildcard alias's target
there may leave ``model`` out (or write ``*``) to send what the pattern's ``*`` matched."""

_Positive = Annotated[float, Meta(gt=0)]
_NonNegative = Annotated[float, Meta(ge=0)]

_NEEDS_MODEL = {"openai": "gpt-4o-mini", "azure": "my-gpt-4o-deployment", "anthropic": "claude-haiku-4-5"}
"""Providers whose API has no default model (an example for the message)."""

_POLICY_LIMITS: dict[str, dict[str, Any]] = {
    "retry": {
        "max_retries": Annotated[int, Meta(ge=0)],
        "base": _Positive,
        "cap": _Positive,
        "max_retry_after": _NonNegative,
        "budget_ratio": _NonNegative,
        "budget_min_per_second": _NonNegative,
    },
    "circuit_breaker": {
        "failures": Annotated[int, Meta(ge=1)],
        "failure_ratio": Annotated[float, Meta(gt=0, le=1)],
        "min_calls": Annotated[int, Meta(ge=1)],
        "window": _Positive,
        "cooldown": _Positive,
        "half_open_probes": Annotated[int, Meta(ge=1)],
    },
}
"""Bounds for the policies' own config structs (defined beside each policy), checked here so the
message names the path like msgspec's own: ``Expected `int` >= 0 - at `$.models[0].retry...```."""


def check(config: Config) -> None:
    """Cross-field rules msgspec cannot express; each message names the offending path."""
    if not config.models:
        raise ConfigError(
            "no models are configured at `$.models`: add at least one alias"
            " (e.g. `{name: demo, targets: [{provider: mock}]}`, see examples/llmrelay.yaml)"
        )
    _check_secrets(config)
    _check_tiers(config)
    _check_tag_labels(config.telemetry.tag_labels)
    if config.alerts is not None and not config.telemetry.metrics:
        raise ConfigError("`$.alerts` reads the metrics: remove `$.telemetry.metrics: false` or the alerts")
    _check_key_scopes(config)
    _check_state_url(config.state.url)
    _check_budgets(config)
    _check_alert_budgets(config)
    if config.state.redis is not None:
        scheme = config.state.redis.url.reveal().partition("://")[0]
        if scheme not in ("redis", "rediss", "unix"):
            # Only the scheme is shown: the URL may carry a password.
            raise ConfigError(
                f"unsupported scheme {scheme!r} at `$.state.redis.url`: use redis://host:port/db"
            )
    _check_cache_store(config.state.cache.url, config.state.cache.namespace)
    names = [m.name for m in config.models]
    for i, model in enumerate(config.models):
        where = f"$.models[{i}]"
        if names.count(model.name) > 1:
            raise ConfigError(f"duplicate model name {model.name!r} at `{where}.name`")
        if model.name.count(WILDCARD) > 1:
            raise ConfigError(f"a model pattern may hold one `*`, {model.name!r} at `{where}.name` has more")
        if not model.targets:
            raise ConfigError(f"model {model.name!r} has no targets at `{where}.targets`")
        for j, target in enumerate(model.targets):
            _check_target(target, pattern=is_pattern(model.name), where=f"{where}.targets[{j}]")
        for fallback in model.fallbacks:
            if fallback not in names or fallback == model.name:
                raise ConfigError(f"unknown fallback {fallback!r} at `{where}.fallbacks`")
            if is_pattern(fallback):
                raise ConfigError(
                    f"a fallback must be a named alias, not the pattern {fallback!r}, at `{where}.fallbacks`"
                )
        for section, limits in _POLICY_LIMITS.items():
            policy = getattr(model, section)
            for field, kind in limits.items():
                try:
                    msgspec.convert(getattr(policy, field), kind)
                except msgspec.ValidationError as err:
                    raise ConfigError(f"invalid config: {err} - at `{where}.{section}.{field}`") from err


def _check_target(target: TargetConfig, *, pattern: bool, where: str) -> None:
    """A provider we know, the model it needs (a pattern's pass-through target may send the
    matched name instead), and the base URL it needs."""
    if target.provider not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown provider {target.provider!r} at `{where}.provider`"
            f" (known: {', '.join(KNOWN_PROVIDERS)})"
        )
    passes = pattern and target.provider in PASS_THROUGH_PROVIDERS
    stars = (target.model or "").count(WILDCARD)
    if stars and not passes:
        only = "a wildcard alias's target" if not pattern else f"a {', '.join(PASS_THROUGH_PROVIDERS)} target"
        raise ConfigError(
            f"`*` in a target's model is for {only} (the matched name goes upstream), at `{where}.model`"
        )
    if stars > 1:
        raise ConfigError(f"a target's model may hold one `*` at `{where}.model`")
    example = _NEEDS_MODEL.get(target.provider)
    if example and not target.model and not passes:
        raise ConfigError(f"an {target.provider} target needs a model at `{where}.model` (e.g. {example})")
    base = _NEEDS_BASE_URL.get(target.provider)
    if base and not target.base_url:
        raise ConfigError(f"an {target.provider} target needs a base_url at `{where}.base_url` (e.g. {base})")


_NEEDS_BASE_URL = {"azure": "https://<resource>.openai.azure.com"}
"""Providers without a default host."""


def _check_alert_budgets(config: Config) -> None:
    """An alert's ``budget`` names a configured budget, on a ``budget_used`` rule only."""
    if config.alerts is None:
        return
    labels = {budget.label for budget in config.budgets}
    for i, rule in enumerate(config.alerts.rules):
        if rule.budget is None:
            continue
        where = f"`$.alerts.rules[{i}].budget`"
        if rule.kind != "budget_used":
            raise ConfigError(f"{where} narrows `budget_used` rules only (this one is {rule.kind})")
        if rule.budget not in labels:
            raise ConfigError(
                f"{where} names no configured budget: {rule.budget!r} (known: {sorted(labels)})"
            )


def _check_budgets(config: Config) -> None:
    """Scopes that exist, and one name per budget (errors and alerts name budgets)."""
    from llmrelay.budgets.rules import scope_is_valid

    labels: set[str] = set()
    for i, budget in enumerate(config.budgets):
        where = f"$.budgets[{i}]"
        if not scope_is_valid(budget.scope):
            raise ConfigError(
                f"unknown budget scope {budget.scope!r} at `{where}.scope` (key, user, team or tag:<name>)"
            )
        if not budget.match:
            raise ConfigError(f"an empty match at `{where}.match` (a value, or `*` for each value)")
        if budget.label in labels:
            raise ConfigError(
                f"a second budget named {budget.label!r} at `{where}`: give it a distinct `name`"
            )
        labels.add(budget.label)


def _check_secrets(config: Config) -> None:
    """An empty key turns authentication on while matching no caller: nobody could log in."""
    if config.server.master_key is not None and not config.server.master_key.reveal().strip():
        raise ConfigError(
            "the master key is empty at `$.server.master_key`: set one, or remove it to run open"
        )
    for i, key in enumerate(config.keys):
        if not key.key.reveal().strip():
            raise ConfigError(f"the key is empty at `$.keys[{i}].key`")


def _check_state_url(url: str | None) -> None:
    """Only URLs every store of the server accepts: virtual keys, the ledger and budgets live at
    the state URL, and have memory, SQLite and PostgreSQL stores (no Redis: Redis holds limits)."""
    if url is None:
        return
    # Only the scheme is ever shown: a URL may carry a password (redis://:secret@host).
    use = "use memory://, sqlite:///path/to.db or postgresql://user@host/db"
    scheme, sep, rest = url.partition("://")
    if scheme in ("redis", "rediss"):
        raise ConfigError(
            f"{scheme}:// is not supported at `$.state.url` (keys, ledger and budgets need a database): {use}"
        )
    if scheme in ("postgresql", "postgres"):
        if not rest.strip("/"):
            raise ConfigError(f"a PostgreSQL state URL needs a host at `$.state.url`: {use}")
        from llmrelay.stores.postgres import split_url

        try:
            split_url(url)  # a bad ?schema= fails here, at start-up
        except ConfigError as err:
            raise ConfigError(f"{err.message} at `$.state.url`: {use}") from err
        return
    if scheme == "sqlite" and sep and rest.startswith("/") and rest.strip("/"):
        return
    if scheme == "sqlite":
        raise ConfigError(f"a sqlite state URL needs a file at `$.state.url`: {use}")
    if scheme != "memory" or not sep:
        raise ConfigError(f"unsupported scheme {scheme!r} at `$.state.url`: {use}")


def _check_tiers(config: Config) -> None:
    """A key's tier must exist (a typo would silently lift its limits); a tier's per-alias limits
    must name an alias."""
    for i, key in enumerate(config.keys):
        if key.tier is not None and key.tier not in config.tiers:
            known = ", ".join(sorted(config.tiers)) or "none configured at `$.tiers`"
            raise ConfigError(f"unknown tier {key.tier!r} at `$.keys[{i}].tier` (known: {known})")
    names = {m.name for m in config.models}
    for tier, limits in config.tiers.items():
        for alias in limits.models:
            if alias not in names:
                raise ConfigError(f"unknown model alias {alias!r} at `$.tiers.{tier}.models`")


def check_tier_shapes(raw: Any) -> None:
    """Validate each tier alone first, so a message names the tier (msgspec says ``$.tiers[...]``
    for any key of a dict): ``Expected `int` >= 1 - at `$.tiers.free.rpm```."""
    from llmrelay.policies.tenants import TierConfig

    tiers = raw.get("tiers") if isinstance(raw, dict) else None
    if not isinstance(tiers, dict):
        return
    for name, value in tiers.items():
        try:
            msgspec.convert(value, TierConfig, strict=False)
        except msgspec.ValidationError as err:
            text = str(err)
            text = (
                text.replace("`$", f"`$.tiers.{name}", 1) if "`$" in text else f"{text} - at `$.tiers.{name}`"
            )
            raise ConfigError(f"invalid config: {text}") from err


def _check_cache_store(url: str | None, namespace: str) -> None:
    """The cache store takes memory, sqlite and redis (only the scheme is ever shown), in a
    namespace that is not idempotency's (whose records cache churn must never evict)."""
    if namespace == "idem":
        raise ConfigError("`$.state.cache.namespace` may not be `idem`: that is idempotency's namespace")
    if url is None:
        return
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("memory", "redis", "rediss"):
        return
    if scheme == "sqlite" and sep and rest.startswith("/") and rest.strip("/"):
        return
    raise ConfigError(
        f"unsupported cache store {scheme!r} at `$.state.cache.url`:"
        " use memory://, sqlite:///path/to.db or redis://host:port/db"
    )


_OWN_LABELS = ("alias", "key", "team", "kind")
"""Labels the token and cost metrics already have: a tag of that name would collide."""


def _check_tag_labels(labels: list[str]) -> None:
    for i, label in enumerate(labels):
        if label in _OWN_LABELS or label in labels[:i]:
            raise ConfigError(
                f"`$.telemetry.tag_labels[{i}]`: {label!r} is already a label of the token and cost"
                f" metrics or listed twice; choose another key metadata name (not {', '.join(_OWN_LABELS)})"
            )


def _check_key_scopes(config: Config) -> None:
    """A static key's scopes, routes and networks are the ones :mod:`llmrelay.keys.scopes` knows."""
    from llmrelay.keys.scopes import checked_ips, checked_routes, checked_scopes

    for i, key in enumerate(config.keys):
        for field, check_field in (
            ("scopes", checked_scopes),
            ("routes", checked_routes),
            ("ips", checked_ips),
        ):
            try:
                check_field(getattr(key, field))
            except InvalidRequest as err:
                raise ConfigError(f"{err.message} - at `$.keys[{i}].{field}`") from None
