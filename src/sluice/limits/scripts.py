"""Lua run by the Redis limiter. Each call is one atomic step on the Redis server.

Keys: a window bucket is a hash ``{prefix}w:{scope}:{window_s}`` with the current window's
start ``s`` (ms) and, per metric, the previous and current counts: ``rp rc`` (requests),
``ip ic`` (input tokens), ``op oc`` (output tokens). A slot set is a sorted set
``{prefix}p:{scope}`` of reservation ids scored by the time their lease ends (ms).
"""

from __future__ import annotations

_NOW = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
"""
"""``now`` (ms): ARGV[1], or the server's clock when ARGV[1] is empty."""

RESERVE = (
    """
-- KEYS: window hashes (nw of them), then slot sets.
-- ARGV: now_ms ('' = the server's TIME), nw, lease_ms, id, need_in, need_out, peek,
--       then per window: length_ms, limit_req, limit_in, limit_out (-1 = none),
--       then per slot set: max in flight.
-- Reply: ok, now_ms, failure count, failures (bucket, metric) pairs, then per window
--        start rp rc ip ic op oc, then per slot set the count in flight.
"""
    + _NOW
    + """
local nw = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local id = ARGV[4]
local need = {1, tonumber(ARGV[5]), tonumber(ARGV[6])}
local peek = ARGV[7] == '1'
local slot_base = 7 + nw * 4
local fails = {}
local states = {}
local lengths = {}
local rolled = {}
for i = 1, nw do
  local b = 7 + (i - 1) * 4
  local w = tonumber(ARGV[b + 1])
  local start = now - (now % w)
  local v = redis.call('HMGET', KEYS[i], 's', 'rp', 'rc', 'ip', 'ic', 'op', 'oc')
  local s = tonumber(v[1])
  local st = {start, 0, 0, 0, 0, 0, 0}
  rolled[i] = s ~= start
  if s == start then
    for f = 2, 7 do st[f] = tonumber(v[f]) or 0 end
  elseif s == start - w then
    st[2] = tonumber(v[3]) or 0
    st[4] = tonumber(v[5]) or 0
    st[6] = tonumber(v[7]) or 0
  end
  local e = now - start
  for m = 1, 3 do
    local limit = tonumber(ARGV[b + 1 + m])
    if limit >= 0 and st[2 * m + 1] + st[2 * m] * (w - e) / w + need[m] > limit then
      fails[#fails + 1] = i - 1
      fails[#fails + 1] = m - 1
    end
  end
  states[i] = st
  lengths[i] = w
end
local counts = {}
for j = 1, #KEYS - nw do
  local key = KEYS[nw + j]
  local n
  if peek then
    n = redis.call('ZCOUNT', key, '(' .. now, '+inf')
  else
    n = redis.call('ZCARD', key)
    local max = tonumber(ARGV[slot_base + j])
    if n + 1 > max then
      -- Full: drop the leases of requests whose replica died, then count again.
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      n = redis.call('ZCARD', key)
    end
    if n + 1 > max then
      fails[#fails + 1] = nw + j - 1
      fails[#fails + 1] = 3
    end
  end
  counts[j] = n
end
local ok = 0
if not peek and #fails == 0 then
  ok = 1
  for i = 1, nw do
    local st = states[i]
    st[3] = st[3] + 1
    st[5] = st[5] + need[2]
    st[7] = st[7] + need[3]
    if rolled[i] then
      redis.call('HSET', KEYS[i], 's', st[1], 'rp', st[2], 'rc', st[3],
        'ip', st[4], 'ic', st[5], 'op', st[6], 'oc', st[7])
      -- A new window: keep the hash while it can still count (as the previous window).
      redis.call('PEXPIRE', KEYS[i], 2 * lengths[i] + 60000)
    else
      redis.call('HSET', KEYS[i], 'rc', st[3], 'ic', st[5], 'oc', st[7])
    end
  end
  for j = 1, #KEYS - nw do
    redis.call('ZADD', KEYS[nw + j], now + lease, id)
    -- Never shorten the set's life (a replica with a longer lease may hold a slot in it).
    if redis.call('PTTL', KEYS[nw + j]) < lease + 60000 then
      redis.call('PEXPIRE', KEYS[nw + j], lease + 60000)
    end
    counts[j] = counts[j] + 1
  end
end
local reply = {ok, now, #fails / 2}
for _, f in ipairs(fails) do reply[#reply + 1] = f end
for i = 1, nw do
  for f = 1, 7 do reply[#reply + 1] = states[i][f] end
end
for j = 1, #counts do reply[#reply + 1] = counts[j] end
return reply
"""
)

ADJUST = """
-- Settle or release. KEYS: window hashes (nw of them), then slot sets.
-- ARGV: nw, id, then per window: start_ms, length_ms, d_req, d_in, d_out.
-- A delta goes to the window the reservation was counted in: the current one, or the
-- previous one if the bucket moved on since; if that window is gone, there is nothing to fix.
-- A reservation that holds slots is adjusted only while it still holds one of them, so the
-- call can be run again (a retry after a timeout, or a late copy that reached the server
-- after a stall) without counting its deltas twice. Reply: 1 if the deltas were applied.
local nw = tonumber(ARGV[1])
local id = ARGV[2]
if #KEYS > nw then
  local removed = 0
  for j = nw + 1, #KEYS do
    removed = removed + redis.call('ZREM', KEYS[j], id)
  end
  if removed == 0 then return 0 end
end
local CUR = {'rc', 'ic', 'oc'}
local PREV = {'rp', 'ip', 'op'}
for i = 1, nw do
  local b = 2 + (i - 1) * 5
  local start = tonumber(ARGV[b + 1])
  local w = tonumber(ARGV[b + 2])
  local s = tonumber(redis.call('HGET', KEYS[i], 's'))
  local fields = nil
  if s == start then
    fields = CUR
  elseif s == start + w then
    fields = PREV
  end
  if fields then
    for m = 1, 3 do
      local d = tonumber(ARGV[b + 2 + m])
      if d ~= 0 then
        local v = redis.call('HINCRBY', KEYS[i], fields[m], d)
        if v < 0 then redis.call('HSET', KEYS[i], fields[m], 0) end
      end
    end
  end
end
return 1
"""

RENEW = (
    """
-- Extend the leases of the reservations in flight on one replica and prune expired slots.
-- KEYS: slot sets. ARGV: now_ms ('' = the server's TIME), lease_ms, then per slot set the
-- number of ids that follow, then those ids.
-- Only members still in a set are renewed (ZADD XX): a slot already released, or pruned
-- after its lease ended, is never taken again by a renewal. Reply: members renewed.
"""
    + _NOW
    + """
local lease = tonumber(ARGV[2])
local at = 3
local renewed = 0
for j = 1, #KEYS do
  local n = tonumber(ARGV[at])
  for k = 1, n do
    renewed = renewed + redis.call('ZADD', KEYS[j], 'XX', 'CH', now + lease, ARGV[at + k])
  end
  at = at + n + 1
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  if redis.call('PTTL', KEYS[j]) < lease + 60000 then
    redis.call('PEXPIRE', KEYS[j], lease + 60000)
  end
end
return renewed
"""
)
