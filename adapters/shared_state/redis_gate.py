"""A pace gate that every worker process shares: one atomic Lua script reserves the next slot in Redis.

The gate has the limits of the in-process gate it stands for (``core.pacing.GateShape``: a sliding window
or a token bucket, one Redis key per limit) and the same :class:`core.pacing.Gate` protocol:

- ``try_take`` (a preview): takes a slot now if every limit has one to spare beyond its reserve, else says
  how long until one may be, and takes nothing;
- ``acquire`` (a final edit, a new message): reserves the earliest slot every limit allows, records it in
  each limit at once, and sleeps until then. Redis runs scripts one at a time, so the slots go out in the
  order the reservations arrive (first come, first served across workers), and N workers together keep
  the platform's pace.

Time is Redis's own clock (``TIME``), so workers on several hosts agree on it. Keys expire once their
window has passed. While Redis is unreachable the in-process gate paces this worker's calls (the shared
state logs one warning; see ``redis_state.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.clock import Clock
from core.pacing import MIN_WAIT, GateShape, PacedGate
from core.shared_state import SharedUnavailable

if TYPE_CHECKING:
    from adapters.shared_state.redis_state import RedisState

# KEYS: one per limit. ARGV[1]: "try" or "take"; then four values per limit: kind, calls, seconds, reserve.
# Returns {granted (1 or 0), seconds to wait before the call (take) or until a slot is free (try)}.
RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local take = ARGV[1] == 'take'

local function limit(i)
  local at = 2 + (i - 1) * 4
  return ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
end

-- the earliest time limit i allows one more call that leaves `spare` calls of its budget unused
local function earliest(i, spare)
  local kind, calls, seconds = limit(i)
  if kind == 'burst' then
    local full_at = redis.call('GET', KEYS[i])
    if not full_at then return now end
    return tonumber(full_at) - (calls - 1 - spare) * seconds
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - seconds)
  local nth = redis.call('ZREVRANGE', KEYS[i], calls - spare - 1, calls - spare - 1, 'WITHSCORES')
  if #nth == 0 then return now end
  return tonumber(nth[2]) + seconds
end

local function record(i, slot)
  local kind, calls, seconds = limit(i)
  if kind == 'burst' then
    local full_at = tonumber(redis.call('GET', KEYS[i]) or slot)
    full_at = math.max(full_at, slot) + seconds
    redis.call('SET', KEYS[i], string.format('%.6f', full_at), 'PX', math.ceil((full_at - now) * 1000) + 1000)
    return
  end
  local member = string.format('%.6f', slot)
  while redis.call('ZSCORE', KEYS[i], member) do member = member .. '+' end
  redis.call('ZADD', KEYS[i], slot, member)
  local last = redis.call('ZREVRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[i], math.ceil((tonumber(last[2]) + seconds - now) * 1000) + 1000)
end

local slot = now
for i = 1, #KEYS do
  local _, _, _, reserve = limit(i)
  slot = math.max(slot, earliest(i, take and 0 or reserve))
end
if not take and slot > now then
  return {0, string.format('%.6f', slot - now)}
end
for i = 1, #KEYS do record(i, slot) end
return {1, string.format('%.6f', slot - now)}
"""


def script_args(shapes: tuple[GateShape, ...]) -> list[str]:
    """The four ARGV values per limit that :data:`RESERVE_SLOT` reads."""
    args: list[str] = []
    for shape in shapes:
        args += [shape.kind, str(shape.calls), repr(shape.seconds), str(shape.reserve)]
    return args


class RedisGate:
    """The :class:`core.pacing.Gate` every worker shares under ``key``, with ``local``'s limits (one Redis
    key per limit: ``key`` and the limit's kind and place, or the keys given, one per limit)."""

    def __init__(
        self,
        state: RedisState,
        key: str | Sequence[str],
        local: PacedGate,
        clock: Clock,
        *,
        max_delay: float | None = None,
    ) -> None:
        self.local = local
        self.max_delay = max_delay
        self._state = state
        self._clock = clock
        shapes = local.shapes
        if isinstance(key, str):
            self._keys = [f"gate:{key}:{shape.kind}:{index}" for index, shape in enumerate(shapes)]
        else:
            if len(key) != len(shapes):
                raise ValueError(f"{len(key)} keys for {len(shapes)} limits")
            self._keys = [f"gate:{name}" for name in key]
        self._args = script_args(local.shapes)

    async def try_take(self) -> float:
        try:
            granted, wait = await self._state.reserve(self._keys, ["try", *self._args])
        except SharedUnavailable:
            return await self.local.try_take()
        if granted:
            return 0.0
        wait = max(MIN_WAIT, wait)
        return min(wait, self.max_delay) if self.max_delay is not None else wait

    async def acquire(self) -> None:
        try:
            _granted, wait = await self._state.reserve(self._keys, ["take", *self._args])
        except SharedUnavailable:
            await self.local.acquire()
            return
        if wait > 0:
            await self._clock.sleep(wait)
