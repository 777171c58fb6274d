"""The budget policy on a fake clock: reservation while a call runs, reconcile to the actual cost,
release on failure and on a stream cancelled or failed before its end, window resets, soft alerts,
and a store outage that must not fail calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import msgspec
import pytest

from llmrelay.budgets.decide import Standing, Verdict
from llmrelay.budgets.rules import BudgetConfig, Claim, claims
from llmrelay.budgets.store import MemoryBudgetStore
from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import UpstreamError
from llmrelay.policies.budget import Budget, BudgetAlert, BudgetExceeded
from llmrelay.pricing.prices import Price
from llmrelay.pricing.tokens import estimate_input_tokens
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message

PRICE = Price(input=1_000_000.0, output=2_000_000.0)  # $1 per input token, $2 per output token
CHEAP = Price(input=1.0, output=1.0)
REQUEST = ChatRequest(model="fast", messages=(text_message("user", "hi there"),), max_tokens=10)
MAX_COST = estimate_input_tokens(REQUEST) * 1.0 + 10 * 2.0
USED = Usage(input_tokens=3, output_tokens=4)
ACTUAL = 3 * 1.0 + 4 * 2.0
STREAM = msgspec.structs.replace(REQUEST, stream=True)


class Upstream:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = 0
        self.arrived = asyncio.Event()
        self.fail: Exception | None = None
        self.stream_fails = False

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.entered += 1
        self.arrived.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        assert isinstance(request, ChatRequest)
        if request.stream:
            stream = await ChatStream.open_chunks(self._chunks(), id="s", model="m", created=1)
            stream.target = "pricey"
            return stream
        return ChatResponse(
            id="r", model="m", created=1, message=text_message("assistant", "ok"), usage=USED, target="pricey"
        )

    async def wait_entered(self, calls: int) -> None:
        while self.entered < calls:
            self.arrived.clear()
            await self.arrived.wait()

    async def _chunks(self) -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        yield ChatChunk(text="b")
        if self.stream_fails:
            raise UpstreamError("reset")
        yield ChatChunk(finish_reason="stop", usage=USED)


def policy(
    clock: FakeClock,
    *rules: BudgetConfig,
    store: MemoryBudgetStore | None = None,
    alerts: list[BudgetAlert] | None = None,
) -> Budget:
    sink = alerts if alerts is not None else []
    return Budget(
        rules,
        store or MemoryBudgetStore(),
        clock,
        prices={"pricey": PRICE, "cheap": CHEAP},
        alias_prices=lambda name: (CHEAP, PRICE) if name == "fast" else (),
        alert=sink.append,
    )


def team(limit: float, **fields: object) -> BudgetConfig:
    return BudgetConfig(**{"scope": "team", "match": "search", "limit_usd": limit, **fields})  # type: ignore[arg-type]


def ctx(clock: FakeClock, team: str = "search") -> Context:
    return Context(clock=clock, principal="key_1", team=team)


async def standing(budget: Budget, clock: FakeClock) -> Standing:
    [(_, value)] = (
        await budget.store.standings(claims(budget._rules, ctx(clock), clock.wall()), now=clock.wall())
    ).items()
    return value


async def test_the_maximum_cost_is_priced_at_the_most_expensive_target() -> None:
    budget = policy(FakeClock(), team(100))
    assert budget.max_cost(REQUEST) == pytest.approx(MAX_COST)
    assert budget.max_cost(ChatRequest(model="unpriced", messages=REQUEST.messages)) == 0.0


async def test_a_unary_call_reserves_then_debits_its_actual_cost() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(100))
    upstream.gate.clear()
    call = asyncio.create_task(budget(REQUEST, ctx(clock), upstream))
    await upstream.wait_entered(1)
    assert await standing(budget, clock) == Standing(0.0, pytest.approx(MAX_COST))  # type: ignore[arg-type]
    upstream.gate.set()
    await call
    assert await standing(budget, clock) == Standing(pytest.approx(ACTUAL), 0.0)  # type: ignore[arg-type]


async def test_concurrent_calls_cannot_reserve_past_the_limit() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(2.5 * MAX_COST, name="search-monthly"))
    upstream.gate.clear()
    running = [asyncio.create_task(budget(REQUEST, ctx(clock), upstream)) for _ in range(2)]
    await upstream.wait_entered(2)
    with pytest.raises(BudgetExceeded) as refused:
        await budget(REQUEST, ctx(clock), upstream)
    err = refused.value
    assert (err.status, err.code, err.should_retry) == (429, "budget_exceeded", False)
    assert "search-monthly" in err.message and "team=search" in err.message
    assert f"{2 * MAX_COST:.6f} reserved" in err.message and f"of {2.5 * MAX_COST:.6f} USD" in err.message
    assert "resets at 2023-12-01T00:00:00Z" in err.message  # FakeClock's wall time is 2023-11-14
    assert err.retry_after == pytest.approx(1_701_388_800 - clock.wall())
    upstream.gate.set()
    await asyncio.gather(*running)
    assert await standing(budget, clock) == Standing(pytest.approx(2 * ACTUAL), 0.0)  # type: ignore[arg-type]


async def test_a_failed_call_releases_its_reservation() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(100))
    upstream.fail = UpstreamError("boom")
    with pytest.raises(UpstreamError):
        await budget(REQUEST, ctx(clock), upstream)
    upstream.fail = ValueError("a foreign exception")
    with pytest.raises(ValueError, match="foreign"):
        await budget(REQUEST, ctx(clock), upstream)
    assert await standing(budget, clock) == Standing(0.0, 0.0)


async def test_a_cancelled_call_releases_its_reservation() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(100))
    upstream.gate.clear()
    call = asyncio.create_task(budget(REQUEST, ctx(clock), upstream))
    await upstream.wait_entered(1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await standing(budget, clock) == Standing(0.0, 0.0)


async def test_a_stream_is_debited_at_its_end() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(100))
    stream = await budget(STREAM, ctx(clock), upstream)
    assert isinstance(stream, ChatStream)
    assert (await standing(budget, clock)).reserved == pytest.approx(MAX_COST)
    [chunk async for chunk in stream]
    assert await standing(budget, clock) == Standing(pytest.approx(ACTUAL), 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["closed", "failed"])
async def test_a_stream_that_does_not_end_releases_its_reservation(how: str) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.stream_fails = how == "failed"
    budget = policy(clock, team(100))
    stream = await budget(STREAM, ctx(clock), upstream)
    assert isinstance(stream, ChatStream)
    if how == "closed":
        await anext(stream)
        await stream.aclose()  # the client went away
    else:
        with pytest.raises(Exception, match="reset"):
            [chunk async for chunk in stream]
    assert await standing(budget, clock) == Standing(0.0, 0.0)


async def test_a_daily_budget_resets_with_its_window() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(ACTUAL + MAX_COST - 0.5, window="daily"))
    await budget(REQUEST, ctx(clock), upstream)
    with pytest.raises(BudgetExceeded, match="resets at"):
        await budget(REQUEST, ctx(clock), upstream)
    clock.advance(86_400)
    await budget(REQUEST, ctx(clock), upstream)


async def test_a_total_budget_never_resets() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(MAX_COST, window="total"))
    await budget(REQUEST, ctx(clock), upstream)
    clock.advance(400 * 86_400)
    with pytest.raises(BudgetExceeded, match="never resets") as refused:
        await budget(REQUEST, ctx(clock), upstream)
    assert refused.value.retry_after is None


async def test_a_soft_budget_alerts_once_per_window_and_lets_calls_through() -> None:
    clock, upstream, alerts = FakeClock(), Upstream(), []
    budget = policy(clock, team(1.0, mode="soft", window="daily"), alerts=alerts)
    for _ in range(3):
        await budget(REQUEST, ctx(clock), upstream)
    assert len(alerts) == 1 and alerts[0].budget == "team=search/daily" and alerts[0].limit_usd == 1.0
    clock.advance(86_400)
    await budget(REQUEST, ctx(clock), upstream)
    assert len(alerts) == 2


class DownStore(MemoryBudgetStore):
    async def reserve(
        self, hold_id: str, claims: Sequence[Claim], amount: float, *, now: float, expires_at: float
    ) -> Verdict:
        raise ConnectionRefusedError("database down")


async def test_a_store_outage_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(0.0), store=DownStore())
    result = await budget(REQUEST, ctx(clock), upstream)
    assert isinstance(result, ChatResponse)
    assert "calls go ahead unbudgeted" in caplog.text


async def test_a_call_against_no_budget_never_touches_the_store() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(0.0), store=DownStore())
    await budget(REQUEST, ctx(clock, team="ads"), upstream)  # DownStore would log if asked


async def test_status_shows_spend_and_reservations() -> None:
    clock, upstream = FakeClock(), Upstream()
    budget = policy(clock, team(100, window="daily"), BudgetConfig(scope="key", limit_usd=50))
    await budget(REQUEST, ctx(clock), upstream)
    status = await budget.status(ctx(clock))
    by_name = {b["name"]: b for b in status["budgets"]}
    assert set(by_name) == {"team=search/daily", "key=*/monthly"}
    daily = by_name["team=search/daily"]
    assert daily["spent_usd"] == pytest.approx(ACTUAL) and daily["remaining_usd"] == pytest.approx(
        100 - ACTUAL
    )
    assert daily["resets_at"] == 1_700_006_400.0  # FakeClock's next UTC midnight
    assert by_name["key=*/monthly"]["value"] == "key_1"


async def test_each_budgets_spend_goes_to_the_metrics_at_the_reservation_and_at_the_end() -> None:
    from llmrelay.telemetry.metrics import Metrics

    seen: list[tuple[str, str, float, float]] = []

    class Recording(Metrics):
        enabled = True

        def budget(self, budget: str, subject: str, spent: float, limit: float) -> None:
            seen.append((budget, subject, spent, limit))

    clock, upstream = FakeClock(), Upstream()
    rules = (team(100), BudgetConfig(scope="key", limit_usd=50, window="daily"))
    budget = Budget(
        rules,
        MemoryBudgetStore(),
        clock,
        prices={"pricey": PRICE},
        alias_prices=lambda name: (PRICE,),
        metrics=Recording(),
    )
    await budget(REQUEST, ctx(clock), upstream)
    stream = await budget(STREAM, ctx(clock), upstream)
    assert isinstance(stream, ChatStream)
    async for _ in stream:
        pass
    for_key = [(spent, limit) for name, subject, spent, limit in seen if subject == "key_1"]
    for_team = [(spent, limit) for name, subject, spent, limit in seen if name == "team=search/monthly"]
    # each call: before it, then with its cost; the stream's when it ended
    expected = [0.0, ACTUAL, ACTUAL, 2 * ACTUAL]
    assert [spent for spent, _ in for_key] == pytest.approx(expected)
    assert [spent for spent, _ in for_team] == pytest.approx(expected)
    assert {limit for _, limit in for_key} == {50} and {limit for _, limit in for_team} == {100}
