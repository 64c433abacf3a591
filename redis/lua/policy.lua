-- ratewall: one atomic decision for every limit of a policy (see redis/src/script.rs).
--
-- KEYS[i]   the state of limit i for one client (all in one hash slot)
-- ARGV[1]   operation: check | peek | refund
-- ARGV[2]   algorithm: tb (token bucket, GCRA) | fw (fixed window) | fwa (aligned fixed window)
--           | sw (sliding window counter) | sl (sliding log)
-- ARGV[3]   cost (permits, >= 1)
-- ARGV[4]   '' to use Redis TIME, or an explicit time in integer microseconds (tests only)
-- ARGV[5]   with an explicit time: milliseconds added to every TTL (tests only)
-- ARGV[4+2i], ARGV[5+2i]   limit i: tb -> interval_us, burst; others -> limit, period_us
--
-- Returns { now_us, then per limit: allowed (0/1), limit, remaining, retry_after_us, reset_after_us }.
--
-- The arithmetic mirrors ratewall's core rules (core/src/*.rs) over integer microseconds. Lua
-- numbers are doubles: every value below stays an integer no larger than 2^53, so every
-- operation is exact (the client checks the bounds; the script checks them again).
-- A denial writes nothing; every write sets a TTL (PEXPIRE), so idle state vanishes by itself.

local MAX_TIME = 4503599627370496      -- 2^52 us: year 2112
local MAX_SPAN = 2251799813685248      -- 2^51 us: periods and token-bucket tolerance

local function fail(msg)
  return redis.error_reply('ERR ratewall: ' .. msg)
end

local function int(s, lo, hi)
  local v = tonumber(s)
  if v == nil or v ~= math.floor(v) or v < lo or v > hi then return nil end
  return v
end

-- floor(a / b) for integers 0 <= a, 1 <= b, a + b <= 2^53: the float quotient, corrected.
local function idiv(a, b)
  local q = math.floor(a / b)
  while q * b > a do q = q - 1 end
  while (q + 1) * b <= a do q = q + 1 end
  return q
end

local function str(n) return string.format('%d', n) end

local op, algo = ARGV[1], ARGV[2]
if op ~= 'check' and op ~= 'peek' and op ~= 'refund' then return fail('unknown operation') end
local cost = int(ARGV[3], 1, MAX_TIME)
if not cost then return fail('cost must be an integer from 1 to 2^52') end

local now, slack
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  slack = 0
else
  now = int(ARGV[4], 0, MAX_TIME)
  slack = int(ARGV[5], 0, 86400000)
  if not now or not slack then return fail('explicit time out of range') end
end
if now > MAX_TIME then return fail('server time past 2^52 microseconds') end

-- Milliseconds of TTL for state that becomes idle `us` microseconds from now (at least 1 ms).
local function ttl(us)
  local ms = idiv(us + 999, 1000)
  if ms < 1 then ms = 1 end
  return str(ms + slack)
end

---------------------------------------------------------------------------------------------
-- Token bucket (core/src/token_bucket.rs). State: the theoretical arrival time `tat`.
---------------------------------------------------------------------------------------------
local function token_bucket(key, T, burst)
  local v = redis.call('GET', key)
  local tat = 0
  if v then tat = tonumber(v) end
  local tol = burst * T
  local horizon = now + tol
  local function available(t)
    if horizon <= t then return 0 end
    return idiv(horizon - t, T)
  end
  if op == 'refund' then
    local new_tat = tat - cost * T
    if new_tat < 0 then new_tat = 0 end
    if new_tat < now then new_tat = now end
    local kept = tat
    local write = nil
    if new_tat < tat then
      kept = new_tat
      write = function() redis.call('SET', key, str(new_tat), 'PX', ttl(new_tat - now)) end
    end
    if kept < now then kept = now end
    return {1, burst, available(kept), 0, kept - now}, write
  end
  local base = tat
  if now > base then base = now end
  local new_tat = base + cost * T
  if new_tat <= horizon then
    return {1, burst, available(new_tat), 0, new_tat - now},
      function() redis.call('SET', key, str(new_tat), 'PX', ttl(new_tat - now)) end
  end
  return {0, burst, available(base), new_tat - horizon, base - now}, nil
end

---------------------------------------------------------------------------------------------
-- Fixed window (core/src/fixed_window.rs). State: the count followed by the window end as 16
-- decimal digits ("3" .. "1764175000000000"), one integer that Redis stores int-encoded
-- (ends are below 2^52 + 2^51 < 10^16). The window end is exact here; the core rounds it up to
-- its packing quantum (see the crate docs).
---------------------------------------------------------------------------------------------
local function fixed_window(key, limit, period, aligned)
  local v = redis.call('GET', key)
  local wend, count = 0, 0
  if v then
    wend, count = tonumber(string.sub(v, -16)), tonumber(string.sub(v, 1, -17))
    if #v < 17 or not wend or not count then
      error({ err = 'ERR ratewall: malformed fixed-window state in ' .. key })
    end
  end
  local function save(e, c)
    return function()
      redis.call('SET', key, str(c) .. string.format('%016d', e), 'PX', ttl(e - now))
    end
  end
  if op == 'refund' then
    if now >= wend then return {1, limit, limit, 0, 0}, nil end
    local left = count - math.min(cost, count)
    local write = nil
    if left ~= count then write = save(wend, left) end
    return {1, limit, limit - left, 0, wend - now}, write
  end
  if now >= wend then
    local start = now
    if aligned then start = now - (now - idiv(now, period) * period) end
    wend, count = start + period, 0
  end
  if count + cost <= limit then
    return {1, limit, limit - count - cost, 0, wend - now}, save(wend, count + cost)
  end
  return {0, limit, limit - count, wend - now, wend - now}, nil
end

---------------------------------------------------------------------------------------------
-- Sliding window counter (core/src/sliding_window.rs). State: "window:prev:cur".
---------------------------------------------------------------------------------------------
local function sliding_window(key, limit, period)
  local window = idiv(now, period)
  local vw = { window = window, elapsed = now - window * period, delay = 0, prev = 0, cur = 0 }
  local v = redis.call('GET', key)
  if v then
    local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
    local w, prev, cur = tonumber(a), tonumber(b), tonumber(c)
    if window == w then
      vw.prev, vw.cur = prev, cur
    elseif window == w + 1 then
      vw.prev = cur
    elseif window < w then
      -- The stored window lies ahead of `now` (the clock stepped back): decide at its start.
      vw = { window = w, elapsed = 0, delay = w * period - now, prev = prev, cur = cur }
    end
  end
  -- prev·(period - elapsed) + cur·period <= limit·period, with both sides <= limit·period.
  local function remaining(cur)
    if cur > limit then return 0 end
    local a = (limit - cur) * period
    local b = vw.prev * (period - vw.elapsed)
    if b > a then return 0 end
    return idiv(a - b, period)
  end
  local function fits(cur)
    return cur <= limit and vw.prev * (period - vw.elapsed) <= (limit - cur) * period
  end
  local function reset_after(cur)
    local windows = 0
    if cur > 0 then windows = 2 elseif vw.prev > 0 then windows = 1 else return 0 end
    return windows * period - vw.elapsed + vw.delay
  end
  local function earliest(weight, other)
    local q = period
    if weight > 0 then q = idiv((limit - other) * period, weight) end
    if q >= period then return 0 end
    return period - q
  end
  local function wait()
    local w = nil
    if vw.cur + cost <= limit and vw.prev > 0 then
      local at = earliest(vw.prev, vw.cur + cost)
      if at < period then w = at - vw.elapsed end
    end
    if w == nil then w = (period - vw.elapsed) + earliest(vw.cur, cost) end
    return w + vw.delay
  end
  local function save(prev, cur)
    local idle = reset_after(cur)
    return function()
      redis.call('SET', key, str(vw.window) .. ':' .. str(prev) .. ':' .. str(cur), 'PX', ttl(idle))
    end
  end
  if op == 'refund' then
    local from_cur = math.min(cost, vw.cur)
    local from_prev = math.min(cost - from_cur, vw.prev)
    vw.prev, vw.cur = vw.prev - from_prev, vw.cur - from_cur
    local write = nil
    if from_cur + from_prev > 0 then write = save(vw.prev, vw.cur) end
    return {1, limit, remaining(vw.cur), 0, reset_after(vw.cur)}, write
  end
  local cur = vw.cur + cost
  if fits(cur) then
    return {1, limit, remaining(cur), 0, reset_after(cur)}, save(vw.prev, cur)
  end
  return {0, limit, remaining(vw.cur), wait(), reset_after(vw.cur)}, nil
end

---------------------------------------------------------------------------------------------
-- Sliding log (core/src/sliding_log.rs). State: a list of the last `limit` expiries (oldest
-- first, sorted), followed by `t_seen`.
---------------------------------------------------------------------------------------------
local function sliding_log(key, limit, period)
  local raw = redis.call('LRANGE', key, 0, -1)
  local n = #raw
  local seen = 0
  local stored = 0               -- expiries stored
  if n > 0 then seen = tonumber(raw[n]); stored = n - 1 end
  -- Ring position j (1 = oldest of the last `limit`, `limit` = newest) -> list index (1-based).
  local function index(j) return stored - limit + j end
  local function expiry(j)
    local i = index(j)
    if i >= 1 then return tonumber(raw[i]) end
    return 0
  end
  -- Entries live at `t` among positions from..to: a suffix, since expiries are sorted.
  local function live_count(from, to, t)
    local lo, hi = from, to + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if expiry(mid) > t then hi = mid else lo = mid + 1 end
    end
    return to + 1 - lo
  end
  local function reset_after()
    local newest = expiry(limit)
    if newest > now then return newest - now end
    return 0
  end
  if op == 'refund' then
    -- A missing log gave nothing: it stays full and nothing is written (as the core's keyed
    -- store, which creates no state for a refund).
    if n == 0 then return {1, limit, limit, 0, 0}, nil end
    local at = math.max(now, seen)
    local first = limit - live_count(1, limit, at) + 1
    local last = math.min(limit, first + cost - 1)
    for j = first, last do raw[index(j)] = str(at) end
    local write = function()
      for j = first, last do redis.call('LSET', key, index(j) - 1, str(at)) end
      redis.call('LSET', key, -1, str(at))
      redis.call('PEXPIRE', key, ttl(reset_after()))
    end
    return {1, limit, limit - live_count(1, limit, now), 0, reset_after()}, write
  end
  local blocked = expiry(cost)
  if blocked > now then
    return {0, limit, limit - live_count(1, limit, now), blocked - now, reset_after()}, nil
  end
  local at = math.max(now, seen)
  local exp = at + period
  local write = function()
    if n > 0 then redis.call('RPOP', key) end
    local chunk = {}
    for i = 1, cost do
      chunk[#chunk + 1] = str(exp)
      if #chunk == 1000 or i == cost then
        redis.call('RPUSH', key, unpack(chunk))
        chunk = {}
      end
    end
    redis.call('RPUSH', key, str(at))
    redis.call('LTRIM', key, -(limit + 1), -1)
    redis.call('PEXPIRE', key, ttl(exp - now))
  end
  return {1, limit, limit - cost - live_count(cost + 1, limit, now), 0, exp - now}, write
end

---------------------------------------------------------------------------------------------
-- The policy: every limit decides on the state as it is; writes happen only if all admit.
---------------------------------------------------------------------------------------------
local nkeys = #KEYS
if nkeys < 1 or #ARGV ~= 5 + 2 * nkeys then return fail('wrong number of arguments') end
local out = { now }
local writes = {}
local all = true
for i = 1, nkeys do
  local a = int(ARGV[4 + 2 * i], 1, MAX_SPAN)
  local b = int(ARGV[5 + 2 * i], 1, MAX_SPAN)
  if not a or not b then return fail('limit parameters out of range') end
  local d, w
  if algo == 'tb' then
    if a * b > MAX_SPAN then return fail('token bucket tolerance out of range') end
    d, w = token_bucket(KEYS[i], a, b)
  elseif algo == 'fw' or algo == 'fwa' then
    d, w = fixed_window(KEYS[i], a, b, algo == 'fwa')
  elseif algo == 'sw' then
    if a * b > MAX_TIME then return fail('sliding window limit x period out of range') end
    d, w = sliding_window(KEYS[i], a, b)
  elseif algo == 'sl' then
    if a > 100000 then return fail('sliding log limit out of range') end
    d, w = sliding_log(KEYS[i], a, b)
  else
    return fail('unknown algorithm')
  end
  if d[1] == 0 then all = false end
  for k = 1, 5 do out[#out + 1] = d[k] end
  writes[i] = w
end
if op == 'refund' or (op == 'check' and all) then
  -- Two identical limits share one key and decided alike on the same state: write it once.
  local written = {}
  for i = 1, nkeys do
    if writes[i] and not written[KEYS[i]] then
      writes[i]()
      written[KEYS[i]] = true
    end
  end
end
return out
