"""Typed configuration, validated once at start-up; the only module that reads the environment.

The same structure loads from YAML or a Python dict (see ``docs/architecture.md``). Unknown keys are
errors that name their path (``$.models[0].targets[1].modle``); ``${VAR}`` and ``${VAR:-default}``
references are resolved from the environment before validation, then a value is coerced to its
field's declared type (``port: ${PORT}`` is an int; a ``str`` field such as a secret ``0123`` is never
reinterpreted); credentials become :class:`Secret` values whose ``repr`` and ``str`` never show
them; a provider key may instead come from a file or a command (:class:`KeySource`).

Everything that cannot work is refused here, once, with the path named: a negative timeout, a
target without the model its provider needs, an empty master key, a state URL no store accepts.
A config that loads runs in both faces, the library and the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from llmrelay.alerts.rules import AlertsConfig
from llmrelay.budgets.rules import BudgetConfig
from llmrelay.cache.settings import CacheConfig, CacheStoreConfig
from llmrelay.config_checks import check, check_tier_shapes
from llmrelay.config_refs import resolve_env, shield_refs, unshield_refs
from llmrelay.config_secrets import CommandSecret as CommandSecret
from llmrelay.config_secrets import FileSecret as FileSecret
from llmrelay.config_secrets import KeySource as KeySource
from llmrelay.config_secrets import Secret as Secret
from llmrelay.config_secrets import decode_secret
from llmrelay.errors import ConfigError
from llmrelay.policies.breaker_state import CircuitBreakerConfig
from llmrelay.policies.moderate_output import OutputModeration
from llmrelay.policies.redact_pii import PiiConfig
from llmrelay.policies.retry import RetryConfig
from llmrelay.policies.tenants import TierConfig
from llmrelay.policies.validate_input import InputGuards
from llmrelay.policies.validate_output import OutputValidation
from llmrelay.routing.patterns import by_length, is_pattern, resolve
from llmrelay.routing.strategies import Strategy

_Positive = Annotated[float, Meta(gt=0)]
"""Seconds, sizes and weights that must be above zero (``0`` or less could never work)."""
_NonNegative = Annotated[float, Meta(ge=0)]
"""Quantities where ``0`` means "off" (no wait, no drain, no cost hint)."""


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class TimeoutConfig(_Strict, frozen=True):
    """Seconds. ``connect`` and ``idle`` (gap between bytes) bound each attempt; ``total`` the call."""

    connect: _Positive = 10.0
    first_token: _Positive | None = None
    idle: _Positive = 600.0
    total: _Positive | None = 600.0


class PriceConfig(_Strict, frozen=True):
    """A target's price in USD per million tokens, replacing the bundled price data (a negotiated
    rate, a model the data does not know, or a self-hosted model at zero). ``cached_input`` and
    ``cache_write`` default to ``input``: what a provider that does not bill them apart charges."""

    input: _NonNegative
    output: _NonNegative
    cached_input: _NonNegative | None = None
    cache_write: _NonNegative | None = None


class TargetConfig(_Strict, frozen=True):
    """One upstream deployment behind an alias. ``options`` are provider-specific (validated there)."""

    provider: str
    model: str | None = None
    api_key: KeySource | None = None
    api_keys: list[KeySource] = msgspec.field(default_factory=list)
    """More keys of this target, tried in order after ``api_key`` (:mod:`llmrelay.providers.keyring`):
    a key answered 401 or 403 is benched for ``key_cooldown`` seconds and the next one tried. A key
    entry with its own ``rpm``/``tpm`` is skipped while it has no room for an attempt; only when
    every key is out is the target rate limited (:mod:`llmrelay.providers.upstream_limits`)."""
    key_accounts: Literal["shared", "separate"] = "shared"
    """``separate``: the keys belong to different accounts, so a 429 on one tries the next."""
    key_cooldown: _Positive = 60.0
    base_url: str | None = None
    weight: _Positive = 1.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    name: str | None = None
    price: PriceConfig | None = None
    """Overrides the price from the bundled price data (``llmrelay.pricing.prices``); without
    either, this target's cost is unknown (``cheapest`` tries it after the priced ones)."""
    rpm: Annotated[int, Meta(ge=1)] | None = None
    tpm: Annotated[int, Meta(ge=1)] | None = None
    """The upstream account's requests and tokens per minute for this target: the gateway stays
    under them (``llmrelay.policies.rate_limit``) instead of provoking the upstream's 429s."""

    @property
    def keys(self) -> list[KeySource]:
        """Every key of this target in the order they are tried (``api_key`` then ``api_keys``)."""
        return ([self.api_key] if self.api_key is not None else []) + list(self.api_keys)

    @property
    def limits_keys(self) -> bool:
        """Whether some key of this target has its own ``rpm`` or ``tpm``."""
        return any(k.rpm or k.tpm for k in self.keys)

    @property
    def label(self) -> str:
        """How logs, headers and errors name this target (never includes credentials)."""
        return self.name or f"{self.provider}/{self.model or 'default'}"


class ModelConfig(_Strict, frozen=True):
    name: str
    targets: list[TargetConfig]
    fallbacks: list[str] = msgspec.field(default_factory=list)
    strategy: Strategy = "weighted"
    timeout: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    guards: InputGuards | None = None
    """Input guards for this alias (caps, control characters, a hook): see ``validate_input``."""
    trust_user: bool = False
    """Count the request's ``user`` field as the user for tier limits (an application key serving
    many end users); otherwise only the key's record (or a JWT) says who the user is."""
    upstream_hold: _NonNegative = 10.0
    """When every target is at its own ``rpm``/``tpm``: wait for one up to this many seconds
    (never past the deadline), else answer 429 at once with the expected wait as Retry-After."""
    pii: PiiConfig | None = None
    """Redact PII in prompts (restored in the answer) and answers: see ``redact_pii``."""
    validate_output: OutputValidation | None = None
    moderation: OutputModeration | None = None
    """A hook that judges every answer of this alias: see ``moderate_output``."""
    """Check answers to JSON-mode requests against what they asked for: see ``validate_output``."""
    cache: CacheConfig | None = None
    """Cache this alias's answers (``ttl``, ``scope``, ``stale_if_error``): see ``policies/cache``."""
    drop_params: bool = False
    """Drop request parameters a target cannot honour (another provider's knobs, such as an OpenAI
    client's ``logprobs`` sent to an Anthropic target) instead of answering 400 naming them."""
    log_content: bool = False
    """Log each call's prompt and answer on ``llmrelay.content`` (redacted; off by default)."""


class TLSConfig(_Strict, frozen=True):
    """Serve HTTPS directly: PEM files of the certificate (chain) and its private key."""

    cert: str
    key: str


class CorsConfig(_Strict, frozen=True):
    """Cross-origin browser access, off unless configured: which origins may call, and how.

    ``origins`` are exact (``https://app.example.com``) or ``*``; credentials are never allowed
    with ``*``.
    """

    origins: list[str]
    methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST", "DELETE"])
    headers: list[str] = msgspec.field(
        default_factory=lambda: ["authorization", "content-type", "x-api-key", "anthropic-version"]
    )
    max_age: Annotated[int, Meta(ge=0)] = 600


class JwtConfig(_Strict, frozen=True):
    """Accept bearer JWTs signed by a JWKS: a file path or an ``https://`` URL (an OIDC provider's
    ``jwks_uri``). ``issuer`` and ``audience`` must match; the claims map to the caller."""

    jwks: str
    issuer: str
    audience: str
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    user_claim: str = "sub"
    team_claim: str | None = "team"
    tier_claim: str | None = "tier"
    models_claim: str | None = None
    refresh: _Positive = 300.0


class ServerConfig(_Strict, frozen=True):
    """The HTTP face. Without a ``master_key`` and without ``keys`` the server runs open (local
    development, as the README's first command does); with either, every call needs a key.

    ``max_header_bytes`` caps a request's head (request line and headers, as received), answered
    431. The 32 KiB default is nginx's total (4 x 8 KiB buffers) and twice node's and h11's
    16 KiB: a gateway sits behind proxies that add forwarding and tracing headers and may get large
    OIDC bearer tokens, but no LLM API call needs more.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 4000
    workers: Annotated[int, Meta(ge=1)] = 1
    master_key: Secret | None = None
    max_body_bytes: Annotated[int, Meta(ge=1)] = 4 * 1024 * 1024
    max_header_bytes: Annotated[int, Meta(ge=1024)] = 32 * 1024
    body_timeout: _Positive = 30.0
    """Seconds a request body may take to arrive (a slow or trickling client gets a 408)."""
    header_timeout: _Positive = 10.0
    """Seconds a request's head (request line and headers) may take to arrive, from the first byte
    of the head (from the connection's start for its first request). A client trickling headers
    gets a 408; a connection that never sends a byte is closed. Headers are small: 10 s is far
    beyond any real client, and short enough that slow-header connections cannot pile up."""
    tls: TLSConfig | None = None
    cors: CorsConfig | None = None
    jwt: JwtConfig | None = None
    heartbeat: _Positive = 15.0
    graceful_shutdown: _NonNegative = 30.0
    idempotency_ttl: _Positive = 86_400.0
    idempotency_wait: _NonNegative = 60.0
    responses_ttl: _Positive = 30 * 86_400.0
    """Seconds a stored ``/v1/responses`` answer (and its conversation) is kept for
    ``previous_response_id`` and ``GET /v1/responses/{id}``: 30 days, as OpenAI keeps them."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Of the ``llmrelay`` loggers on stderr; ``warning`` silences the access log."""
    ui: bool = True
    """The dashboard at ``/ui`` (log in with the master key; without one it is off)."""


class TelemetryConfig(_Strict, frozen=True):
    """Metrics labels, tracing and content logging (docs/architecture.md §11).

    ``metrics``: the server's Prometheus metrics (``/metrics``); off, nothing is counted.
    ``tag_labels``: key metadata entries (beyond ``team``) that become labels of the token and
    cost metrics; only these, so the number of series stays bounded by what operators configure.
    ``otlp_endpoint``: an OTLP/HTTP traces endpoint (``http://127.0.0.1:4318/v1/traces``); set, it
    turns tracing on (needs the ``otel`` extra), and the access and content logs are exported as
    OpenTelemetry log records too, to ``otlp_logs_endpoint`` (unset: the same collector's
    ``/v1/logs``). ``capture_content`` puts prompt and completion text on spans; off, spans never
    hold text.
    """

    metrics: bool = True
    tag_labels: list[Annotated[str, Meta(pattern=r"^[a-zA-Z][a-zA-Z0-9_]*$")]] = msgspec.field(
        default_factory=list
    )
    otlp_endpoint: str | None = None
    otlp_logs_endpoint: str | None = None
    service_name: str = "llmrelay"
    sample_ratio: Annotated[float, Meta(ge=0, le=1)] = 1.0
    """Share of root traces recorded (a caller's sampled flag is followed): spans cost CPU."""
    capture_content: bool = False


class RedisConfig(_Strict, frozen=True):
    """Redis shared by every replica for rate limits and the records replicas share
    (``redis://[:password@]host:port/db``).

    ``on_error`` decides what a limit does while Redis cannot be reached: ``open`` admits the call
    (availability first), ``closed`` refuses it with a 503. ``timeout`` (seconds) bounds each
    decision, so an outage never holds a request longer than that.
    """

    url: Secret
    on_error: Literal["open", "closed"] = "open"
    timeout: _Positive = 1.0


class StateConfig(_Strict, frozen=True):
    """Where state lives. Unset: in memory for the library, ``sqlite:///<data dir>/llmrelay.db``
    for the server (the data dir is ``$LLMRELAY_HOME`` or ``~/.llmrelay``). Rate limits count in
    process memory unless ``redis`` is set; with ``redis`` the records replicas share
    (idempotency, stored responses, dashboard sessions, alert leases) live there too
    (:func:`llmrelay.stores.open_state_kv`)."""

    url: str | None = None
    redis: RedisConfig | None = None
    cache: CacheStoreConfig = CacheStoreConfig()
    """The store of cached answers (its own namespace; ``memory://`` unless ``url`` says else)."""


class LedgerConfig(_Strict, frozen=True):
    """The usage ledger of the server (``llmrelay.ledger``): one row per request at the state URL,
    written in batches of ``batch`` rows at least every ``flush_interval`` seconds; up to ``buffer``
    rows wait in memory while the store is unreachable (more are dropped, with a warning)."""

    enabled: bool = True
    batch: Annotated[int, Meta(ge=1, le=100_000)] = 1_000
    flush_interval: _Positive = 0.5
    buffer: Annotated[int, Meta(ge=1)] = 200_000


class StaticKey(_Strict, frozen=True):
    """A virtual key declared in config (GitOps); more come from ``llmrelay keys`` / the admin API."""

    key: Secret
    name: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    tier: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: float | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    """``admin`` or ``admin:read`` (see README, "Virtual keys")."""
    routes: list[str] = msgspec.field(default_factory=list)
    ips: list[str] = msgspec.field(default_factory=list)
    max_tokens: Annotated[int, Meta(ge=1)] | None = None


class Config(_Strict, frozen=True):
    server: ServerConfig = ServerConfig()
    state: StateConfig = StateConfig()
    keys: list[StaticKey] = msgspec.field(default_factory=list)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    ledger: LedgerConfig = LedgerConfig()
    budgets: list[BudgetConfig] = msgspec.field(default_factory=list)
    """Spend limits per key, user, team or tag (``llmrelay.budgets``), kept at the state URL."""
    tiers: dict[str, TierConfig] = msgspec.field(default_factory=dict)
    """Named limit sets that keys hold (``llmrelay.policies.tenants``); ``default`` applies to
    callers without a tier."""

    telemetry: TelemetryConfig = TelemetryConfig()
    alerts: AlertsConfig | None = None
    """Rules over the metrics, evaluated by the server, sent to webhooks (:mod:`llmrelay.alerts`)."""

    @property
    def has_limits(self) -> bool:
        """Whether anything counts requests or tokens (tiers, or a target's ``rpm``/``tpm``)."""
        return bool(self.tiers) or any(
            t.rpm or t.tpm or t.limits_keys for m in self.models for t in m.targets
        )

    @property
    def auth_required(self) -> bool:
        return self.server.master_key is not None or bool(self.keys) or self.server.jwt is not None

    def model(self, alias: str) -> ModelConfig | None:
        """The alias a requested model name resolves to (a named alias, else the longest matching
        pattern; :mod:`llmrelay.routing.patterns`)."""
        by_name = {m.name: m for m in self.models}
        found = resolve(alias, by_name, by_length(n for n in by_name if is_pattern(n)))
        return by_name[found.alias] if found is not None else None


def load_config(
    source: str | Path | Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Load and validate config from a YAML file path or a mapping of the same shape."""
    env = os.environ if environ is None else environ
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        import yaml  # deferred: only file-based config needs it

        try:
            text, refs = shield_refs(Path(source).read_text(encoding="utf-8"))
            raw = unshield_refs(yaml.safe_load(text) or {}, refs)
        except OSError as err:
            raise ConfigError(f"cannot read config file {source}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {_yaml_error(source, err)}") from err
    resolved = resolve_env(raw, env, "$")
    check_tier_shapes(resolved)
    try:
        # strict=False: a string becomes an int, float or bool only where the field asks for one
        # (``${PORT}``); ``str`` fields keep the text as written.
        config = msgspec.convert(resolved, Config, dec_hook=decode_secret, strict=False)
    except msgspec.ValidationError as err:
        raise ConfigError(f"invalid config: {err}") from err
    check(config)
    return config


def _yaml_error(source: str | Path, err: Exception) -> str:
    """One line, ``path:line: problem``, naming the file (PyYAML would say ``<unicode string>``).

    Only the line is given: parking ``${...}`` references may shift columns, never lines.
    """
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem is None or mark is None:
        return f"{source} is not valid YAML: {' '.join(str(err).split())}"
    context, started = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and started is not None:
        problem += f" ({context} started at line {started.line + 1})"
    return f"{source}:{mark.line + 1}: not valid YAML: {problem}"
