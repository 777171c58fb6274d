"""Redis rate limits, shared by every replica: one Lua script per decision, on Redis's clock.

It talks to Redis over one pipelined connection (:mod:`.resp`; every request in flight shares
it). One script takes a request's concurrency slots and applies the GCRA rule of
:mod:`llmrelay.stores.rates` to every counter of the take at once (all or nothing, atomic in
Redis: one round trip) and returns the states it saw with Redis's own ``TIME``;
the client rebuilds each :class:`~llmrelay.stores.rates.Decision` with the same pure
:func:`~llmrelay.stores.rates.decide`. Using Redis's clock means replicas need no synchronised
clocks. Each counter is one string key that expires when its bucket is full again; concurrency
slots are a sorted set of leases scored by their expiry, so a crashed replica's leases run out.

**When Redis is unreachable** (``state.redis.on_error``): ``open`` (the default) admits the call and
logs a warning at most every 10 s; ``closed`` refuses it with
:class:`~llmrelay.stores.rates.LimitStoreDown` (503). Either way a decision never waits longer than
``timeout`` seconds (1 by default: a connect may take half of it; the cap covers the whole call,
a reconnect included, and a call that runs out drops the connection), so an outage costs each
request at most that, never a hang. The cap is not shorter because a replica under a burst
delays its own event loop: a healthy Redis must not look down then. Refunds, late charges and
lease releases (one script call at a request's end) are sent in the background, so they never
delay an answer; those that fail are dropped (the counters and leases expire by themselves).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from llmrelay.clock import Clock
from llmrelay.stores.rates import LINE_GRACE, Decision, LimitStoreDown, Line, OnError, Take, behind, decide
from llmrelay.stores.resp import Connection, RedisDown, Reply, ReplyError

log = logging.getLogger("llmrelay.rate_limits")


_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local nslots = tonumber(ARGV[2])
local lease = ARGV[3]
local ttl = tonumber(ARGV[4])
local member = ARGV[5]
local eps = 1e-9
local charge = mode == 'adjust' or mode == 'leave'
local out = {string.format('%.17g', now), '1'}
local ok = true
local last = #KEYS
local line = nil
local ahead = false
if member ~= '' then
  line = KEYS[last]
  last = last - 1
  redis.call('ZREMRANGEBYSCORE', line, '-inf', now - tonumber(ARGV[6]))
  local head = redis.call('ZRANGE', line, 0, 0)[1]
  if head and head ~= member then ahead = true end
end
for i = 1, nslots do
  if mode == 'leave' then
    redis.call('ZREM', KEYS[i], lease)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local count = redis.call('ZCARD', KEYS[i])
    if count >= tonumber(ARGV[6 + i]) then ok = false end
    out[#out + 1] = tostring(count)
  end
end
local news = {}
local base_arg = 6 + nslots
for i = nslots + 1, last do
  local j = base_arg + 3 * (i - nslots - 1)
  local units = tonumber(ARGV[j + 1])
  local limit = tonumber(ARGV[j + 2])
  local period = tonumber(ARGV[j + 3])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[#out + 1] = string.format('%.17g', tat)
  local base = tat
  if base < now then base = now end
  local new
  if charge then
    if units >= 0 then new = base + units * interval else new = tat + units * interval end
    if new < now then new = now end
  else
    new = base + units * interval
    if units > limit or new - period - now > eps then ok = false end
  end
  news[i] = new
end
if mode ~= 'peek' and ((ok and not ahead) or charge) then
  if mode == 'take' then
    for i = 1, nslots do
      redis.call('ZADD', KEYS[i], now + ttl, lease)
      redis.call('PEXPIRE', KEYS[i], math.ceil(ttl * 1000) + 1000)
    end
  end
  for i = nslots + 1, last do
    local ms = math.ceil((news[i] - now) * 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.17g', news[i]), 'PX', ms)
  end
end
if charge then return 1 end
if line then
  if ok and not ahead then
    redis.call('ZREM', line, member)
  else
    redis.call('ZADD', line, 'NX', now, member)
    redis.call('PEXPIRE', line, math.ceil(tonumber(ARGV[6]) * 1000) + 1000)
  end
end
if ahead then out[2] = 'q' elseif not ok then out[2] = '0' end
return out
"""

_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


class RedisRateLimits:
    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        prefix: str = "llmrelay:rl:",
        on_error: OnError = "open",
        timeout: float = 1.0,
    ) -> None:
        self._url = url
        self._clock = clock
        self._prefix = prefix
        self._on_error = on_error
        self._timeout = timeout
        self._connection: Connection | None = None
        self._pending: set[asyncio.Future[object]] = set()
        self._warned_at = -math.inf

    async def open(self) -> None:
        if self._connection is None:
            self._connection = Connection(
                self._url, connect_timeout=self._timeout / 2, call_timeout=self._timeout
            )

    async def aclose(self) -> None:
        await self.settle()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    async def ping(self) -> bool:
        return await self._live().call("PING") == b"PONG"

    async def take(
        self,
        takes: Sequence[Take],
        *,
        slots: Sequence[tuple[str, int]] = (),
        lease: str = "",
        ttl: float = 0.0,
        line: Line | None = None,
    ) -> list[Decision]:
        return await self._run("take", takes, slots, lease, ttl, line)

    async def peek(self, takes: Sequence[Take]) -> list[Decision]:
        return await self._run("peek", takes)

    async def adjust(self, takes: Sequence[Take]) -> None:
        # In the background: a refund or a late charge never delays an answer.
        self._later("adjust", takes)

    async def leave(self, keys: Sequence[str], lease: str, *, adjust: Sequence[Take] = ()) -> None:
        # One script call for the slots and the tokens, in the background as adjust is.
        if keys or adjust:
            self._later("leave", adjust, [(key, 0) for key in keys], lease)

    def _later(
        self, mode: str, takes: Sequence[Take], slots: Sequence[tuple[str, int]] = (), lease: str = ""
    ) -> None:
        """Send a call nobody waits for: straight onto the connection when it is up (no task),
        else (connecting, or the script must be loaded again) through a task that does that."""
        keys, args = self._command(mode, takes, slots, lease, 0.0)
        sent = self._live().send("EVALSHA", _SHA, len(keys), *keys, *args)
        if sent is None:
            self._track(asyncio.ensure_future(self._run(mode, takes, slots, lease)))
            return
        self._track(sent)

        def done(future: asyncio.Future[Reply]) -> None:
            error = future.exception()
            if error is not None:
                self._warn(error)  # best effort: counters and leases expire by themselves
            elif _no_script(future.result()):  # a restarted or flushed Redis: load it again
                self._track(asyncio.ensure_future(self._run(mode, takes, slots, lease)))

        sent.add_done_callback(done)

    def _track(self, work: asyncio.Future[Any]) -> None:
        self._pending.add(work)
        work.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the refunds and releases still being sent (tests; :meth:`aclose` does it)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _command(
        self,
        mode: str,
        takes: Sequence[Take],
        slots: Sequence[tuple[str, int]],
        lease: str,
        ttl: float,
        line: Line | None = None,
    ) -> tuple[list[str], list[Any]]:
        """The script's keys and arguments for a call."""
        prefix = self._prefix
        member, wait = ("", 0) if line is None else (line.member, line.wait + LINE_GRACE)
        args: list[Any] = [mode, len(slots), lease, ttl, member, wait, *(limit for _, limit in slots)]
        for take in takes:
            rate = take.rate
            args += (take.units, rate.limit, rate.period)
        keys = [prefix + key for key, _ in slots] + [prefix + t.key for t in takes]
        if line is not None:
            keys.append(prefix + line.key)
        return keys, args

    async def _run(
        self,
        mode: str,
        takes: Sequence[Take],
        slots: Sequence[tuple[str, int]] = (),
        lease: str = "",
        ttl: float = 0.0,
        line: Line | None = None,
    ) -> list[Decision]:
        keys, args = self._command(mode, takes, slots, lease, ttl, line)
        try:
            if mode in ("adjust", "leave"):  # answered with a plain 1
                await self._evalsha(self._live(), keys, args)
                return []
            seen = await self._call(keys, args)
        except _FAILURES as err:
            if mode in ("adjust", "leave"):
                self._warn(err)  # best effort: counters and leases expire by themselves
                return []
            self._failed(err)
            return [Decision(True, limit, limit - 1, 0.0) for _, limit in slots] + [
                Decision(True, t.rate.limit, int(t.rate.limit), 0.0) for t in takes
            ]
        now, ok, ahead = float(seen[0]), seen[1] == b"1", seen[1] == b"q"
        decisions = []
        for count, (_, limit) in zip(seen[2:], slots, strict=False):
            free = int(count) < limit
            left = limit - int(count) - (1 if ok else 0)
            decisions.append(Decision(free, limit, max(0, left), 0.0, 0.0 if free else 1.0))
        tats = seen[2 + len(slots) :]
        decisions += [decide(float(tat), now, t.units, t.rate)[1] for t, tat in zip(takes, tats, strict=True)]
        if ahead:
            return behind(decisions)
        if mode == "take" and ok != all(d.allowed for d in decisions):
            # Rounding at the very edge of a bucket: Redis's verdict stands.
            decisions = [
                msgspec.structs.replace(d, allowed=ok, retry_after=0.0 if ok else 1e-3) for d in decisions
            ]
        return decisions

    async def _call(self, keys: list[str], args: list[Any]) -> list[bytes]:
        reply = await self._evalsha(self._live(), keys, args)
        if not isinstance(reply, list):
            raise RedisDown(f"unexpected answer to the limit script: {type(reply).__name__}")
        return reply

    async def _evalsha(self, connection: Connection, keys: list[str], args: list[Any]) -> Reply:
        reply = await connection.call("EVALSHA", _SHA, len(keys), *keys, *args)
        if _no_script(reply):
            await connection.call("SCRIPT", "LOAD", _SCRIPT)  # a restarted or flushed Redis
            reply = await connection.call("EVALSHA", _SHA, len(keys), *keys, *args)
        return reply

    def _live(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the rate-limit store is not open")
        return self._connection

    def _failed(self, err: BaseException) -> None:
        self._warn(err)
        if self._on_error == "closed":
            raise LimitStoreDown(
                "rate limits are unavailable (their store cannot be reached); try again shortly",
                retry_after=1.0,
            ) from err

    def _warn(self, err: BaseException) -> None:
        now = self._clock.now()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            log.warning("rate-limit store unreachable (%s); failing %s", type(err).__name__, self._on_error)


_FAILURES = (RedisDown, ReplyError, OSError, TimeoutError)


def _no_script(reply: Reply) -> bool:
    """Redis does not know the script (restarted or flushed since it was loaded)."""
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")
