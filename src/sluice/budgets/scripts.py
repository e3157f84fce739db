"""Lua run by the Redis budget store; each call is one atomic step on the server.

A budget period is a hash ``{prefix}{scope}:{period}:{start}`` with ``spent`` (settled) and
``reserved`` (held by requests in flight), in micro-dollars, and a sorted set
``...:{start}:holds`` of the holds (members ``id:amount``) scored by the end of their lease
(ms). The period start in the keys makes the reset automatic; the keys expire a day after
the period ends.
"""

from __future__ import annotations

RESERVE = """
-- KEYS: per budget, its hash and its holds set.
-- ARGV: amount, now_ms, lease_ms, hold member ('id:amount'), then per budget: limit,
--       ttl_ms (0 = never).
-- Reply: ok, then per budget the spent and reserved amounts seen.
local amount = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local member = ARGV[4]
local n = #KEYS / 2
local reply = {0}
local ok = 1
local fresh = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = tonumber(ARGV[3 + 2 * i])
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  fresh[i] = not v[1] and not v[2]
  local spent = tonumber(v[1]) or 0
  local reserved = tonumber(v[2]) or 0
  if reserved > 0 and (spent >= limit or spent + reserved + amount > limit) then
    -- No room: first free the holds whose lease ended (their replica died), then look again.
    local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
    if #dead > 0 then
      for _, m in ipairs(dead) do
        reserved = reserved - tonumber(string.match(m, ':(%d+)$'))
      end
      if reserved < 0 then reserved = 0 end
      redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
      redis.call('HSET', h, 'reserved', reserved)
    end
  end
  if spent >= limit or spent + reserved + amount > limit then ok = 0 end
  reply[#reply + 1] = spent
  reply[#reply + 1] = reserved
end
if ok == 1 and amount > 0 then
  for i = 1, n do
    local h, z = KEYS[2 * i - 1], KEYS[2 * i]
    local ttl = tonumber(ARGV[4 + 2 * i])
    redis.call('HINCRBY', h, 'reserved', amount)
    redis.call('ZADD', z, now + lease, member)
    if ttl > 0 then
      if fresh[i] then redis.call('PEXPIRE', h, ttl) end
      redis.call('PEXPIRE', z, ttl)
    end
  end
end
reply[1] = ok
return reply
"""

ADJUST = """
-- Settle or release. KEYS: per budget, its hash and its holds set.
-- ARGV: hold member ('id:amount'), held amount, actual cost, guard ('1' or '0'), then per
--       budget: ttl_ms.
-- A hold already freed by lease expiry is not freed twice; the cost is added regardless,
-- unless guard is '1': then a budget gets the cost only if this call freed its hold. A
-- settle sent again after a failure (it may have run on the server before) is guarded, so
-- its cost counts once.
local member = ARGV[1]
local held = tonumber(ARGV[2])
local actual = tonumber(ARGV[3])
local guard = ARGV[4] == '1'
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local freed = false
  if held ~= 0 and redis.call('ZREM', z, member) == 1 then
    freed = true
    if redis.call('HINCRBY', h, 'reserved', -held) < 0 then
      redis.call('HSET', h, 'reserved', 0)
    end
  end
  -- A hash that was gone (expired, flushed) is created again here and needs its TTL.
  local fresh = false
  if actual ~= 0 and (freed or not guard) then
    fresh = redis.call('HINCRBY', h, 'spent', actual) == actual
  end
  local ttl = tonumber(ARGV[4 + i])
  if fresh and ttl > 0 then redis.call('PEXPIRE', h, ttl) end
end
return 1
"""

LOAD = """
-- KEYS[1]: a budget hash. ARGV: spent, ttl_ms (0 = never). Spend = max(stored, spent).
local spent = tonumber(ARGV[1])
if (tonumber(redis.call('HGET', KEYS[1], 'spent')) or 0) < spent then
  redis.call('HSET', KEYS[1], 'spent', spent)
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
