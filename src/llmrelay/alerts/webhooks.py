"""Alert delivery: one POST per webhook, JSON signed with HMAC-SHA256, or Slack's ``{"text"}``.

Signing (when the webhook has a ``secret``): ``x-llmrelay-timestamp`` is the Unix time of sending
and ``x-llmrelay-signature`` is ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with the
secret, the scheme Stripe and Slack use, so a receiver can reject replays by age and bodies that
were not ours. :func:`verify` is the receiver's side. Requests go through the gateway's own
HTTP/1.1 client (:mod:`llmrelay.providers.http`); a failed delivery is logged, never raised: an
alert must not take the evaluator down.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Literal

import msgspec

from llmrelay.alerts.rules import AlertRule, Webhook
from llmrelay.errors import RelayError
from llmrelay.providers.http import Upstream

log = logging.getLogger("llmrelay.alerts")

Status = Literal["firing", "resolved"]


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The generic JSON body."""

    status: Status
    rule: str
    kind: str
    value: float | None
    threshold: float
    window: float
    alias: str | None
    at: float
    """Unix time of the evaluation that changed the state."""
    summary: str
    instance: str | None = None
    """Which of a rule's many things it is about (``budget_used``: ``<budget>|<subject>``)."""


_WORDS = {
    "above": ("above", "back under"),
    "reaches": ("at or above", "back under"),
    "below": ("below", "back at or above"),
}
"""How a summary says a rule of each direction fired and resolved."""


def event(
    rule: AlertRule, status: Status, observed: float | None, at: float, *, instance: str | None = None
) -> AlertEvent:
    shown = "n/a" if observed is None else f"{observed:.4g}"
    scope = f" for {rule.alias}" if rule.alias else ""
    if instance:
        scope += f" of {instance}"
    fired, resolved = _WORDS[rule.direction]
    summary = (
        f"[{status.upper()}] {rule.name}: {rule.kind}{scope} is {shown}"
        f" ({fired if status == 'firing' else resolved} {rule.threshold:g} over {rule.window:g}s)"
    )
    return AlertEvent(
        status=status,
        rule=rule.name,
        kind=rule.kind,
        value=observed,
        threshold=rule.threshold,
        window=rule.window,
        alias=rule.alias,
        at=at,
        summary=summary,
        instance=instance,
    )


def body_for(webhook: Webhook, alert: AlertEvent) -> bytes:
    if webhook.format == "slack":
        return msgspec.json.encode({"text": alert.summary})
    return msgspec.json.encode(alert)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    """The receiver's check (constant time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), signed)


class Deliveries:
    """One pooled client per webhook, opened with the evaluator."""

    def __init__(self, webhooks: list[Webhook]) -> None:
        self._hooks = [
            (hook, Upstream(hook.url, provider="webhook", secrets=(hook.secret,))) for hook in webhooks
        ]

    async def open(self) -> None:
        for _, upstream in self._hooks:
            await upstream.open()

    async def aclose(self) -> None:
        for _, upstream in self._hooks:
            await upstream.aclose()

    async def send(self, alert: AlertEvent, now: float) -> None:
        for hook, upstream in self._hooks:
            body = body_for(hook, alert)
            headers: dict[str, Any] = {"content-type": "application/json"}
            if hook.secret is not None:
                stamp = str(int(now))
                headers["x-llmrelay-timestamp"] = stamp
                headers["x-llmrelay-signature"] = signature(hook.secret, stamp, body)
            try:
                reply = await upstream.post("", body, headers=headers)
            except RelayError as err:
                log.warning("alert %s to %s failed: %s", alert.rule, upstream.host, err.message)
                continue
            if not 200 <= reply.status < 300:
                log.warning("alert %s to %s answered %d", alert.rule, upstream.host, reply.status)
