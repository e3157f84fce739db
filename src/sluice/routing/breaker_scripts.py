"""The Lua scripts behind :class:`~sluice.routing.breaker_redis.RedisBreakers`: each state
transition is one atomic step on the Redis server, which publishes it."""

from __future__ import annotations

from sluice.routing.health import WINDOW_BUCKETS

PRELUDE = f"""
local N = {WINDOW_BUCKETS}
local function load(key)
  local raw = redis.call('HGETALL', key)
  local h = {{}}
  for j = 1, #raw, 2 do h[raw[j]] = raw[j + 1] end
  return h
end
local function num(h, f) return tonumber(h[f]) or 0 end
local function reply(h, now, width)
  local cur = math.floor(now / width)
  local req, fail = 0, 0
  for n = 0, N - 1 do
    local i = tonumber(h['i' .. n])
    if i and i > cur - N and i <= cur then
      req = req + num(h, 'o' .. n) + num(h, 'f' .. n)
      fail = fail + num(h, 'f' .. n)
    end
  end
  return {{num(h, 's'), num(h, 'r'), num(h, 'c'), num(h, 'e'), req, fail}}
end
-- Writes are collected and saved in one HSET and one HDEL at the end.
local dirty = {{}}
local function set(h, field, value)
  h[field] = value
  dirty[field] = value
end
local function transition(h, state, retry, channel, name)
  set(h, 's', state)
  set(h, 'r', retry)
  set(h, 'e', num(h, 'e') + 1)
  for n = 0, N - 1 do
    for _, f in ipairs({{'i' .. n, 'o' .. n, 'f' .. n}}) do
      h[f] = nil
      dirty[f] = false
    end
  end
  redis.call('PUBLISH', channel, name)
end
local function save(key, ttl)
  local sets, dels = {{}}, {{}}
  for f, v in pairs(dirty) do
    if v == false then
      dels[#dels + 1] = f
    else
      sets[#sets + 1] = f
      sets[#sets + 1] = v
    end
  end
  if #sets > 0 then redis.call('HSET', key, unpack(sets)) end
  if #dels > 0 then redis.call('HDEL', key, unpack(dels)) end
  if ttl and (#sets > 0 or #dels > 0) then redis.call('PEXPIRE', key, ttl) end
end
"""

RECORD = (
    PRELUDE
    + """
-- KEYS[1]: the breaker. ARGV: now_ms, ok (1/0), failures, error_rate, min_requests,
-- width_ms, cooldown_ms, ttl_ms, channel, deployment key. Reply: the state after.
local key, now, ok = KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1'
local width = tonumber(ARGV[6])
local h = load(key)
local s = num(h, 's')
if s == 0 then
  local cur = math.floor(now / width)
  local n = cur % N
  if tonumber(h['i' .. n]) ~= cur then
    set(h, 'i' .. n, cur)
    set(h, 'o' .. n, 0)
    set(h, 'f' .. n, 0)
  end
  if ok then
    set(h, 'o' .. n, num(h, 'o' .. n) + 1)
    if num(h, 'c') ~= 0 then set(h, 'c', 0) end
  else
    set(h, 'f' .. n, num(h, 'f' .. n) + 1)
    set(h, 'c', num(h, 'c') + 1)
    local state = reply(h, now, width)
    local req, fail = state[5], state[6]
    if num(h, 'c') >= tonumber(ARGV[3])
        or (req >= tonumber(ARGV[5]) and fail >= tonumber(ARGV[4]) * req) then
      transition(h, 1, now + tonumber(ARGV[7]), ARGV[9], ARGV[10])
    end
  end
elseif s == 2 then
  if ok then
    set(h, 'c', 0)
    transition(h, 0, 0, ARGV[9], ARGV[10])
  else
    set(h, 'c', num(h, 'c') + 1)
    transition(h, 1, now + tonumber(ARGV[7]), ARGV[9], ARGV[10])
  end
end
save(key, ARGV[8])
return reply(h, now, width)
"""
)

CLAIM = (
    PRELUDE
    + """
-- KEYS[1]: the breaker. ARGV: now_ms, width_ms, lease_ms, replica, ttl_ms, channel,
-- deployment key. Half-opens a breaker whose cool-down (or probe lease) is over and gives
-- the probe to this replica. Reply: granted (1/0), then the state after.
local key, now = KEYS[1], tonumber(ARGV[1])
local h = load(key)
local granted = 0
if num(h, 's') ~= 0 and now >= num(h, 'r') then
  set(h, 's', 2)
  set(h, 'r', now + tonumber(ARGV[3]))
  set(h, 'e', num(h, 'e') + 1)
  set(h, 'h', ARGV[4])
  save(key, ARGV[5])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
  granted = 1
end
local state = reply(h, now, tonumber(ARGV[2]))
table.insert(state, 1, granted)
return state
"""
)

RELEASE = (
    PRELUDE
    + """
-- KEYS[1]: the breaker. ARGV: now_ms, width_ms, replica, channel, deployment key.
-- Ends this replica's probe lease now, so another request may probe.
local key, now = KEYS[1], tonumber(ARGV[1])
local h = load(key)
if num(h, 's') == 2 and h['h'] == ARGV[3] and num(h, 'r') > now then
  set(h, 'r', now)
  save(key, nil)
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return reply(h, now, tonumber(ARGV[2]))
"""
)

READ = (
    PRELUDE
    + """
-- KEYS: breakers. ARGV: now_ms, then each breaker's width_ms. Reply: their states, flat.
local now, out = tonumber(ARGV[1]), {}
for k = 1, #KEYS do
  for _, v in ipairs(reply(load(KEYS[k]), now, tonumber(ARGV[k + 1]))) do
    out[#out + 1] = v
  end
end
return out
"""
)
