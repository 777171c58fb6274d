"""Per-key upstream limits as tables on a fake clock: which key each attempt is sent with, when a
key is skipped for the next, and when the target as a whole is rate limited (the keys' shortest
wait). The ring is driven directly with a fake attempt; the server test is in tests/e2e."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.errors import ConfigError, TargetLimited, UpstreamAuthError, UpstreamError
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.providers.keyring import KeyRing
from llmrelay.stores.rates import Rate, decide
from llmrelay.stores.rates_memory import MemoryRateLimits
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hello there"),), max_tokens=100)
ESTIMATE = estimate_input_tokens(REQUEST) + output_bound(REQUEST)


def ring(keys: list[Any], clock: FakeClock, **target: Any) -> tuple[KeyRing, MemoryRateLimits]:
    config = load_config(
        {
            "models": [
                {
                    "name": "m",
                    "targets": [
                        {"provider": "openai", "model": "x", "name": "t", "api_keys": keys, **target}
                    ],
                }
            ]
        }
    )
    store = MemoryRateLimits(clock)
    return KeyRing.of(config.models[0].targets[0], clock, store), store


class Attempts:
    """A fake attempt: records the key it is sent with and answers with ``usage`` (or fails)."""

    def __init__(self) -> None:
        self.sent: list[str | None] = []
        self.usage = Usage(input_tokens=10, output_tokens=20)
        self.refuse: set[str] = set()
        self.fail = False

    async def __call__(self, key: str | None) -> ChatResponse:
        self.sent.append(key)
        if key in self.refuse:
            raise UpstreamAuthError("bad key")
        if self.fail:
            raise UpstreamError("boom")
        return ChatResponse(
            id="r", model="m", created=1, message=text_message("assistant", "ok"), usage=self.usage
        )


def tokens_left(store: MemoryRateLimits, key: str, tpm: int) -> int:
    return decide(store._tats.get(key, 0.0), store._clock.now(), 0, Rate(tpm, 60))[1].remaining


@pytest.mark.parametrize(
    ("rpms", "sent"),
    [
        # each key's burst in config order, then the target is out
        ([2, 1], ["a", "a", "b"]),
        ([1, 2], ["a", "b", "b"]),
        # a key without limits of its own always has room: the limited one first while it has room
        ([1, None], ["a", "b", "b", "b", "b"]),
    ],
)
async def test_each_attempt_takes_the_first_key_with_room(rpms: list[int | None], sent: list[str]) -> None:
    clock = FakeClock()
    keys = [{"key": name, **({"rpm": rpm} if rpm else {})} for name, rpm in zip("ab", rpms, strict=True)]
    keyring, _ = ring(keys, clock)
    attempts = Attempts()
    for _ in sent:
        await keyring.call(attempts, REQUEST)
    assert attempts.sent == sent
    if None not in rpms:
        with pytest.raises(TargetLimited) as caught:
            await keyring.call(attempts, REQUEST)
        assert attempts.sent == sent  # nothing was sent
        # the shortest wait of the keys: a key of rpm r refills one request every 60/r s
        assert caught.value.retry_after == pytest.approx(min(60 / r for r in rpms if r))


async def test_refill_brings_a_key_back() -> None:
    clock = FakeClock()
    keyring, _ = ring([{"key": "a", "rpm": 1}, {"key": "b", "rpm": 2}], clock)
    attempts = Attempts()
    for _ in range(3):
        await keyring.call(attempts, REQUEST)
    with pytest.raises(TargetLimited) as caught:
        await keyring.call(attempts, REQUEST)
    assert caught.value.retry_after == pytest.approx(30.0)
    clock.advance(30)  # b refills one request; a (one a minute) not yet
    await keyring.call(attempts, REQUEST)
    assert attempts.sent[-1] == "b"
    clock.advance(30)
    await keyring.call(attempts, REQUEST)
    assert attempts.sent[-1] == "a"


async def test_tokens_reserve_per_key_and_reconcile_or_go_back() -> None:
    clock = FakeClock()
    tpm = ESTIMATE + 50
    keyring, store = ring([{"key": "a", "tpm": tpm}, {"key": "b", "tpm": tpm}], clock)
    attempts = Attempts()
    await keyring.call(attempts, REQUEST)
    assert tokens_left(store, "target:t:key0:t", tpm) == tpm - 30  # reconciled to 10 + 20
    attempts.fail = True
    with pytest.raises(UpstreamError):
        await keyring.call(attempts, REQUEST)
    assert tokens_left(store, "target:t:key0:t", tpm) == tpm - 30  # the failed attempt gave its back
    attempts.fail = False
    attempts.usage = Usage(input_tokens=ESTIMATE, output_tokens=0)
    await keyring.call(attempts, REQUEST)  # a: 30 + estimate still fit
    await keyring.call(attempts, REQUEST)  # a is out for this estimate: b
    assert attempts.sent[-2:] == ["a", "b"]


async def test_a_request_that_fits_no_key_says_so() -> None:
    keyring, _ = ring([{"key": "a", "tpm": 10}, {"key": "b", "tpm": 10}], FakeClock())
    attempts = Attempts()
    with pytest.raises(TargetLimited) as caught:
        await keyring.call(attempts, REQUEST)
    assert caught.value.retry_after is None
    assert attempts.sent == []


async def test_a_stream_reconciles_its_key_tokens_when_it_ends() -> None:
    clock = FakeClock()
    keyring, store = ring([{"key": "a", "tpm": 10_000}], clock)

    async def chunks() -> Any:
        yield ChatChunk(text="a", finish_reason="stop")
        yield ChatChunk(usage=Usage(input_tokens=5, output_tokens=7))

    async def attempt(key: str | None) -> ChatStream:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=1, provider="p")

    stream = await keyring.call(attempt, REQUEST)
    assert tokens_left(store, "target:t:key0:t", 10_000) == 10_000 - ESTIMATE
    await stream.collect()
    assert tokens_left(store, "target:t:key0:t", 10_000) == 10_000 - 12


async def test_a_refused_key_after_another_was_skipped_still_leaves_the_target_limited() -> None:
    clock = FakeClock()
    keyring, _ = ring([{"key": "a", "rpm": 1}, {"key": "b"}], clock)
    attempts = Attempts()
    await keyring.call(attempts, REQUEST)  # a's only request this minute
    attempts.refuse = {"b"}
    with pytest.raises(TargetLimited) as caught:  # a is out, b refused its key: wait for a
        await keyring.call(attempts, REQUEST)
    assert isinstance(caught.value.__cause__, UpstreamAuthError)
    assert attempts.sent == ["a", "b"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"key": "k", "rpm": 0}, r"rpm.*at `\$\.models\[0\]\.targets\[0\]\.api_keys\[1\]`"),
        ({"key": "k", "tpm": "many"}, r"tpm.*at `\$\.models\[0\]\.targets\[0\]\.api_keys\[1\]`"),
        ({"key": "k", "rpm": 5, "burst": 2}, r"expected a key.*api_keys\[1\]`"),
        ({"file": "/nonexistent", "rpm": 5, "color": 1}, r"color.*api_keys\[1\]`"),
    ],
)
def test_invalid_key_limits_name_the_path(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(
            {
                "models": [
                    {
                        "name": "m",
                        "targets": [{"provider": "openai", "model": "x", "api_keys": ["k0", entry]}],
                    }
                ]
            }
        )


def test_key_limits_parse_on_every_form() -> None:
    config = load_config(
        {
            "models": [
                {
                    "name": "m",
                    "targets": [
                        {
                            "provider": "openai",
                            "model": "x",
                            "api_key": {"key": "k0", "rpm": "7"},  # `${VAR}` text fills numbers
                            "api_keys": [{"file": "/run/k1", "tpm": 9}, "k2"],
                        }
                    ],
                }
            ]
        }
    )
    target = config.models[0].targets[0]
    assert [(k.rpm, k.tpm) for k in target.keys] == [(7, None), (None, 9), (None, None)]
    assert target.limits_keys and config.has_limits
