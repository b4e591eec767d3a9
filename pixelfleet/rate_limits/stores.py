"""Where the limiter keeps its state (the `RateStore` port, in `limiter.py`): this process's
memory, or Redis (shared by every replica, decided atomically in one script on Redis' own clock,
so replicas' clocks need not agree)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from pixelfleet.rate_limits.policy import Rate, decide

KEY_PREFIX = "pixelfleet:ratelimit:"


class MemoryRateStore:
    """One process's limits (`pixelfleet up` serves the API from one process)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, int] = {}
        self._max_keys = max_keys

    async def take(self, key: str, rate: Rate) -> int:
        now = int(time.monotonic() * 1000)
        if len(self._tats) >= self._max_keys:
            self._forget_idle(now)
        decision = decide(rate, self._tats.get(key), now)
        self._tats[key] = decision.tat_ms
        return decision.retry_after_ms

    def _forget_idle(self, now: int) -> None:
        """A key whose TAT has passed holds its full allowance again: forgetting it is exact."""
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        while len(self._tats) >= self._max_keys:  # all busy: drop the oldest, never grow unbounded
            self._tats.pop(next(iter(self._tats)))


# The same decision as `policy.decide`, on Redis' clock, in one atomic step.
_GCRA = """
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allowed_from = new_tat - burst
if now < allowed_from then return allowed_from - now end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
"""


class RedisRateStore:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, rate: Rate) -> int:
        wait = await self._script(keys=[KEY_PREFIX + key], args=[rate.burst_ms, rate.interval_ms])
        return int(wait)
