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
-- A denial writes nothing; every write sets a TTL (PX / PEXPIRE), so idle state vanishes.
--
-- Speed: Redis runs this body on every call, and in its Lua every closure or table costs about
-- as much as a GET. So the algorithms are inline branches, not functions, and the writes of a
-- policy (made only once every limit has decided) are kept as numbers in one flat table.

local MAX_TIME = 4503599627370496      -- 2^52 us: year 2112
local MAX_SPAN = 2251799813685248      -- 2^51 us: periods and token-bucket tolerance
local floor, fmt, num = math.floor, string.format, tonumber
local call = redis.call

local function int(s, lo, hi)
  local v = num(s)
  if v == nil or v ~= floor(v) or v < lo or v > hi then return nil end
  return v
end

-- floor(a / b) for integers 0 <= a, 1 <= b, a + b <= 2^53: the float quotient, corrected
-- (math.floor(a / b) alone can be off by one when the quotient rounds up to an integer).
local function idiv(a, b)
  local q = floor(a / b)
  while q * b > a do q = q - 1 end
  while (q + 1) * b <= a do q = q + 1 end
  return q
end

local op, algo = ARGV[1], ARGV[2]
if op ~= 'check' and op ~= 'peek' and op ~= 'refund' then
  return redis.error_reply('ERR ratewall: unknown operation')
end
local cost = int(ARGV[3], 1, MAX_TIME)
if not cost then return redis.error_reply('ERR ratewall: cost must be an integer from 1 to 2^52') end

local now, slack
if ARGV[4] == '' then
  local t = call('TIME')
  now = num(t[1]) * 1000000 + num(t[2])
  slack = 0
else
  now = int(ARGV[4], 0, MAX_TIME)
  slack = int(ARGV[5], 0, 86400000)
  if not now or not slack then return redis.error_reply('ERR ratewall: explicit time out of range') end
end
if now > MAX_TIME then return redis.error_reply('ERR ratewall: server time past 2^52 microseconds') end

local nkeys = #KEYS
if nkeys < 1 or #ARGV ~= 5 + 2 * nkeys then
  return redis.error_reply('ERR ratewall: wrong number of arguments')
end
if algo ~= 'tb' and algo ~= 'fw' and algo ~= 'fwa' and algo ~= 'sw' and algo ~= 'sl' then
  return redis.error_reply('ERR ratewall: unknown algorithm')
end
local writing = op ~= 'peek'

local out = { now }
-- Pending writes, 6 numbers per limit: [1] 0 = none, else what to write; [2..5] its values;
-- [6] microseconds until the written state is idle (the TTL).
local w = {}
local all = true

-- Sliding log helpers. `entry(p)`: the expiry at ring position p (1 = oldest of the last
-- `limit`; 0 before the first entry), from `raw` (the whole list, read by a refund) or else read
-- with LINDEX: a check reads a few entries, not the whole log. `live(from, to, t)`: how many of
-- positions from..to hold an expiry after `t`. Expiries are sorted, so the live ones are a
-- suffix: the first position is tried first (usually all are live), then binary search.
local raw, stored, limit_sl, sl_key
local live, entry
if algo == 'sl' then
  entry = function(p)
    local i = stored - limit_sl + p
    if i < 1 then return 0 end
    if raw then return num(raw[i]) end
    return num(call('LINDEX', sl_key, i - 1))
  end
  live = function(from, to, t)
    if from > to then return 0 end
    if entry(from) > t then return to - from + 1 end
    local lo, hi = from + 1, to + 1
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      if entry(mid) > t then hi = mid else lo = mid + 1 end
    end
    return to + 1 - lo
  end
end

for i = 1, nkeys do
  local key = KEYS[i]
  local a = int(ARGV[4 + 2 * i], 1, MAX_SPAN)
  local b = int(ARGV[5 + 2 * i], 1, MAX_SPAN)
  if not a or not b then return redis.error_reply('ERR ratewall: limit parameters out of range') end
  local base = 6 * (i - 1)
  w[base + 1] = 0
  local allowed, limit, remaining, retry, reset

  if algo == 'tb' then
    ---------------------------------------------------------------------------------------
    -- Token bucket (core/src/token_bucket.rs). State: the theoretical arrival time `tat`.
    ---------------------------------------------------------------------------------------
    local T, burst = a, b
    if T * burst > MAX_SPAN then return redis.error_reply('ERR ratewall: token bucket tolerance out of range') end
    local tat = num(call('GET', key) or 0)
    if not tat then error({ err = 'ERR ratewall: malformed token-bucket state in ' .. key }) end
    local horizon = now + burst * T
    limit = burst
    if op == 'refund' then
      local new_tat = tat - cost * T
      if new_tat < now then new_tat = now end
      local kept = tat
      if new_tat < tat then
        kept = new_tat
        w[base + 1], w[base + 2], w[base + 6] = 1, new_tat, new_tat - now
      end
      if kept < now then kept = now end
      allowed, retry, reset = 1, 0, kept - now
      remaining = 0
      if horizon > kept then remaining = idiv(horizon - kept, T) end
    else
      local from = tat
      if now > from then from = now end
      local new_tat = from + cost * T
      if new_tat <= horizon then
        allowed, retry, reset = 1, 0, new_tat - now
        remaining = idiv(horizon - new_tat, T)
        w[base + 1], w[base + 2], w[base + 6] = 1, new_tat, new_tat - now
      else
        allowed, retry, reset = 0, new_tat - horizon, from - now
        remaining = 0
        if horizon > from then remaining = idiv(horizon - from, T) end
      end
    end

  elseif algo == 'fw' or algo == 'fwa' then
    ---------------------------------------------------------------------------------------
    -- Fixed window (core/src/fixed_window.rs). State: the count followed by the window end as
    -- 16 decimal digits ("3" .. "1764175000000000"), one integer that Redis stores
    -- int-encoded (ends are below 2^52 + 2^51 < 10^16). The window end is exact here; the
    -- core rounds it up to its packing quantum (see the crate docs).
    ---------------------------------------------------------------------------------------
    local period = b
    limit = a
    local v = call('GET', key)
    local wend, count = 0, 0
    if v then
      wend, count = num(string.sub(v, -16)), num(string.sub(v, 1, -17))
      if #v < 17 or not wend or not count then
        error({ err = 'ERR ratewall: malformed fixed-window state in ' .. key })
      end
    end
    if op == 'refund' then
      allowed, retry = 1, 0
      if now >= wend then
        remaining, reset = limit, 0
      else
        local left = count - cost
        if left < 0 then left = 0 end
        if left ~= count then w[base + 1], w[base + 2], w[base + 3], w[base + 6] = 2, left, wend, wend - now end
        remaining, reset = limit - left, wend - now
      end
    else
      if now >= wend then
        local start = now
        if algo == 'fwa' then start = idiv(now, period) * period end
        wend, count = start + period, 0
      end
      reset = wend - now
      if count + cost <= limit then
        allowed, remaining, retry = 1, limit - count - cost, 0
        w[base + 1], w[base + 2], w[base + 3], w[base + 6] = 2, count + cost, wend, wend - now
      else
        allowed, remaining, retry = 0, limit - count, wend - now
      end
    end

  elseif algo == 'sw' then
    ---------------------------------------------------------------------------------------
    -- Sliding window counter (core/src/sliding_window.rs). State: "window:prev:cur".
    ---------------------------------------------------------------------------------------
    local period = b
    limit = a
    if limit * period > MAX_TIME then
      return redis.error_reply('ERR ratewall: sliding window limit x period out of range')
    end
    local window = idiv(now, period)
    local elapsed, delay, prev, cur = now - window * period, 0, 0, 0
    local v = call('GET', key)
    if v then
      local sw, sp, sc = string.match(v, '^(%d+):(%d+):(%d+)$')
      sw, sp, sc = num(sw), num(sp), num(sc)
      if not sc then error({ err = 'ERR ratewall: malformed sliding-window state in ' .. key }) end
      if window == sw then
        prev, cur = sp, sc
      elseif window == sw + 1 then
        prev = sc
      elseif window < sw then
        -- The stored window lies ahead of `now` (the clock stepped back): decide at its start.
        window, elapsed, delay, prev, cur = sw, 0, sw * period - now, sp, sc
      end
    end
    -- Weighted use prev·(period - elapsed) + c·period against limit·period; both sides of
    -- every comparison stay <= limit·period.
    local weighted = prev * (period - elapsed)
    local c = cur
    if op == 'refund' then
      local from_cur = cost
      if from_cur > cur then from_cur = cur end
      local from_prev = cost - from_cur
      if from_prev > prev then from_prev = prev end
      prev, cur, c = prev - from_prev, cur - from_cur, cur - from_cur
      weighted = prev * (period - elapsed)
      allowed, retry = 1, 0
      if from_cur + from_prev > 0 then w[base + 1] = 3 end
    elseif cur + cost <= limit and weighted <= (limit - cur - cost) * period then
      allowed, retry, c = 1, 0, cur + cost
      w[base + 1] = 3
    else
      allowed = 0
      -- Earliest elapsed time e with weight·(period - e) + other·period <= limit·period.
      local wait = nil
      if cur + cost <= limit and prev > 0 then
        local q = idiv((limit - cur - cost) * period, prev)
        local at = 0
        if q < period then at = period - q end
        if at < period then wait = at - elapsed end
      end
      if wait == nil then
        local q = period
        if cur > 0 then q = idiv((limit - cost) * period, cur) end
        local at = 0
        if q < period then at = period - q end
        wait = (period - elapsed) + at
      end
      retry = wait + delay
    end
    local spare = (limit - c) * period
    remaining = 0
    if c <= limit and weighted <= spare then remaining = idiv(spare - weighted, period) end
    reset = 0
    if c > 0 then reset = 2 * period - elapsed + delay
    elseif prev > 0 then reset = period - elapsed + delay end
    if w[base + 1] == 3 then
      w[base + 2], w[base + 3], w[base + 4], w[base + 6] = window, prev, c, reset
    end

  else
    ---------------------------------------------------------------------------------------
    -- Sliding log (core/src/sliding_log.rs). State: a list of the last `limit` expiries
    -- (oldest first, sorted), followed by `t_seen`.
    ---------------------------------------------------------------------------------------
    local period = b
    limit = a
    if limit > 100000 then return redis.error_reply('ERR ratewall: sliding log limit out of range') end
    local n, seen = 0, 0
    stored, limit_sl, sl_key = 0, limit, key
    if op == 'refund' then
      raw = call('LRANGE', key, 0, -1)
      n = #raw
      if n > 0 then seen, stored = num(raw[n]), n - 1 end
    else
      raw = nil
      n = call('LLEN', key)
      if n > 0 then seen, stored = num(call('LINDEX', key, -1)), n - 1 end
    end
    if op == 'refund' then
      local newest = 0
      if stored >= 1 then newest = num(raw[stored]) end
      allowed, retry = 1, 0
      if n == 0 then
        -- A missing log gave nothing: it stays full and nothing is written (as the core's
        -- keyed store, which creates no state for a refund).
        remaining, reset = limit, 0
      else
        local at = now
        if seen > at then at = seen end
        local first = limit - live(1, limit, at) + 1
        local last = first + cost - 1
        if last > limit then last = limit end
        local sat = fmt('%d', at)
        for j = first, last do raw[stored - limit + j] = sat end
        if stored >= 1 then newest = num(raw[stored]) end
        remaining = limit - live(1, limit, now)
        reset = 0
        if newest > now then reset = newest - now end
        w[base + 1], w[base + 2], w[base + 3], w[base + 4], w[base + 6] =
          5, stored - limit + first - 1, stored - limit + last - 1, at, reset
      end
    else
      -- The newest of the `cost` oldest entries decides.
      local blocked = entry(cost)
      if blocked > now then
        -- Sorted: every entry after it is live too; only the `cost` oldest need counting.
        allowed, remaining, retry = 0, cost - live(1, cost, now), blocked - now
        local newest = entry(limit)
        reset = 0
        if newest > now then reset = newest - now end
      else
        local at = now
        if seen > at then at = seen end
        local exp = at + period
        allowed, retry, reset = 1, 0, exp - now
        remaining = limit - cost - live(cost + 1, limit, now)
        w[base + 1], w[base + 2], w[base + 3], w[base + 4], w[base + 6] = 4, n, exp, at, exp - now
      end
    end
  end

  if allowed == 0 then all = false end
  local o = #out
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = allowed, limit, remaining, retry, reset
end

if writing and (op == 'refund' or all) then
  local written = {}
  for i = 1, nkeys do
    local base = 6 * (i - 1)
    local kind = w[base + 1]
    local key = KEYS[i]
    -- Two identical limits share one key and decided alike on the same state: write it once.
    if kind ~= 0 and not written[key] then
      written[key] = true
      local ms = idiv(w[base + 6] + 999, 1000)
      if ms < 1 then ms = 1 end
      local px = fmt('%d', ms + slack)
      if kind == 1 then
        call('SET', key, fmt('%d', w[base + 2]), 'PX', px)
      elseif kind == 2 then
        call('SET', key, fmt('%d%016d', w[base + 2], w[base + 3]), 'PX', px)
      elseif kind == 3 then
        call('SET', key, fmt('%d:%d:%d', w[base + 2], w[base + 3], w[base + 4]), 'PX', px)
      elseif kind == 4 then
        -- Admit: drop t_seen, append `cost` expiries and the new t_seen, keep the last `limit`.
        local limit = num(ARGV[4 + 2 * i])
        if w[base + 2] > 0 then call('RPOP', key) end
        local sexp = fmt('%d', w[base + 3])
        local chunk = {}
        for j = 1, cost do
          chunk[#chunk + 1] = sexp
          if #chunk == 1000 or j == cost then
            call('RPUSH', key, unpack(chunk))
            chunk = {}
          end
        end
        call('RPUSH', key, fmt('%d', w[base + 4]))
        call('LTRIM', key, -(limit + 1), -1)
        call('PEXPIRE', key, px)
      else
        -- Refund: the forgotten entries (list positions [2]..[3]) and t_seen become `at`.
        local sat = fmt('%d', w[base + 4])
        for j = w[base + 2], w[base + 3] do call('LSET', key, j, sat) end
        call('LSET', key, -1, sat)
        call('PEXPIRE', key, px)
      end
    end
  end
end
return out
