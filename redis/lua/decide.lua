-- ratewall's scripts, part 2: one decision (see prelude.lua for its arguments and reply).
-- Given by the entry point: k0 and a0, the offsets of this decision's keys and arguments in
-- KEYS and ARGV; nkeys and nargs, how many there are; clock, Redis TIME in microseconds when
-- the entry has already read it (nil: read it here when no explicit time is given). The script
-- of one decision sets them first; in `batch.lua` they are the parameters of `decide`.

local op, algo = ARGV[a0 + 1], ARGV[a0 + 2]
local now, slack
if nargs == 3 + 2 * nkeys then
  if clock then
    now = clock
  else
    local t = call('TIME')
    now = num(t[1]) * 1000000 + num(t[2])
  end
  slack = 0
elseif nargs == 5 + 2 * nkeys then
  now, slack = num(ARGV[a0 + nargs - 1]), num(ARGV[a0 + nargs])
  if not now or now ~= floor(now) or now < 0 or not slack or slack ~= floor(slack) or slack < 0
      or slack > 86400000 then
    return redis.error_reply('ERR ratewall: explicit time out of range')
  end
else
  return redis.error_reply('ERR ratewall: wrong number of arguments')
end
if now > MAX_TIME then return redis.error_reply('ERR ratewall: time past 2^52 microseconds') end
if nkeys < 1 then return redis.error_reply('ERR ratewall: wrong number of arguments') end
local refund = op == 'refund'
if op ~= 'check' and op ~= 'peek' and not refund then
  return redis.error_reply('ERR ratewall: unknown operation')
end
if algo ~= 'tb' and algo ~= 'fw' and algo ~= 'fwa' and algo ~= 'sw' and algo ~= 'sl' then
  return redis.error_reply('ERR ratewall: unknown algorithm')
end
local cost = parsed[ARGV[a0 + 3]] or arg(a0 + 3)
if cost ~= checked_cost then
  if not cost or cost ~= floor(cost) or cost < 1 or cost > MAX_TIME then
    return redis.error_reply('ERR ratewall: cost must be an integer from 1 to 2^52')
  end
  checked_cost = cost
end

-- The decision of the last limit, and its pending write: kind 0 = none, else what to write
-- (1..5, see the end), its values x2..x4, `ttl`, microseconds until the written state is
-- idle, and `keep` = 1 when the key's current expiry is already that (kinds 2 and 3). With
-- several limits, each limit's write is kept in `w` (6 numbers per limit) and the decisions in
-- `out` (4 per limit).
local allowed, remaining, retry, reset
local kind, x2, x3, x4, ttl, keep
local out, w
if nkeys > 1 then out, w = {}, {} end
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

-- floor(x / y) below is exact for integers 0 <= x, 1 <= y, x + y <= 2^53 once corrected: the
-- float quotient is off by at most one when it rounds up (or down) across an integer.
for i = 1, nkeys do
  local key = KEYS[k0 + i]
  local ia = a0 + 2 + 2 * i
  local a, b = parsed[ARGV[ia]] or arg(ia), parsed[ARGV[ia + 1]] or arg(ia + 1)
  if a ~= checked_a or b ~= checked_b then
    if not a or not b or a ~= floor(a) or b ~= floor(b) or a < 1 or b < 1 or a > MAX_SPAN
        or b > MAX_SPAN then
      return redis.error_reply('ERR ratewall: limit parameters out of range')
    end
    checked_a, checked_b = a, b
  end
  kind, keep = 0, 0

  if algo == 'tb' then
    ---------------------------------------------------------------------------------------
    -- Token bucket (core/src/token_bucket.rs). State: the theoretical arrival time `tat`.
    ---------------------------------------------------------------------------------------
    local T, burst = a, b
    if T * burst > MAX_SPAN then return redis.error_reply('ERR ratewall: token bucket tolerance out of range') end
    local tat = num(call('GET', key) or 0)
    if not tat then error({ err = 'ERR ratewall: malformed token-bucket state in ' .. key }) end
    local horizon = now + burst * T
    -- `from`: where the decision reads the bucket; `to`: the tat it leaves.
    local from, to
    if refund then
      to = tat - cost * T
      if to < now then to = now end
      if to < tat then kind, x2, ttl = 1, to, to - now else to = tat end
      if to < now then to = now end
      allowed, retry, reset = 1, 0, to - now
    else
      from = tat
      if now > from then from = now end
      to = from + cost * T
      if to <= horizon then
        allowed, retry, reset = 1, 0, to - now
        kind, x2, ttl = 1, to, to - now
      else
        allowed, retry, reset = 0, to - horizon, from - now
        to = from
      end
    end
    remaining = 0
    if horizon > to then
      local x = horizon - to
      remaining = floor(x / T)
      while remaining * T > x do remaining = remaining - 1 end
      while (remaining + 1) * T <= x do remaining = remaining + 1 end
    end

  elseif algo == 'fw' or algo == 'fwa' then
    ---------------------------------------------------------------------------------------
    -- Fixed window (core/src/fixed_window.rs). State: the count followed by the window end as
    -- 16 decimal digits ("3" .. "1764175000000000"), one integer that Redis stores
    -- int-encoded (ends are below 2^52 + 2^51 < 10^16). The window end is exact here; the
    -- core rounds it up to its packing quantum (see the crate docs).
    ---------------------------------------------------------------------------------------
    local limit, period = a, b
    local v = call('GET', key)
    local wend, count = 0, 0
    -- x4: the stored end's 16 digits, written back as they are while the window goes on.
    x4 = nil
    if v then
      x4 = sub(v, -16)
      wend, count = num(x4), num(sub(v, 1, -17))
      if #v < 17 or not wend or not count then
        error({ err = 'ERR ratewall: malformed fixed-window state in ' .. key })
      end
    end
    if refund then
      allowed, retry = 1, 0
      if now >= wend then
        remaining, reset = limit, 0
      else
        local left = count - cost
        if left < 0 then left = 0 end
        if left ~= count then kind, x2, x3, ttl, keep = 2, left, wend, wend - now, 1 end
        remaining, reset = limit - left, wend - now
      end
    else
      -- The stored window goes on: the key already expires at its end (set when it opened).
      keep = 1
      if now >= wend then
        keep, x4 = 0, nil
        local start = now
        if algo == 'fwa' then
          start = floor(now / period)
          while start * period > now do start = start - 1 end
          while (start + 1) * period <= now do start = start + 1 end
          start = start * period
        end
        wend, count = start + period, 0
      end
      reset = wend - now
      if count + cost <= limit then
        allowed, remaining, retry = 1, limit - count - cost, 0
        kind, x2, x3, ttl = 2, count + cost, wend, reset
      else
        allowed, remaining, retry = 0, limit - count, reset
      end
    end

  elseif algo == 'sw' then
    ---------------------------------------------------------------------------------------
    -- Sliding window counter (core/src/sliding_window.rs). State: "window:prev:cur".
    ---------------------------------------------------------------------------------------
    local limit, period = a, b
    if limit * period > MAX_TIME then
      return redis.error_reply('ERR ratewall: sliding window limit x period out of range')
    end
    local window = floor(now / period)
    while window * period > now do window = window - 1 end
    while (window + 1) * period <= now do window = window + 1 end
    local elapsed, delay, prev, cur = now - window * period, 0, 0, 0
    -- `held`: the stored count of the window decided in (0 when the stored window is another).
    local held = 0
    local v = call('GET', key)
    if v then
      local sw, sp, sc = string.match(v, '^(%d+):(%d+):(%d+)$')
      sw, sp, sc = num(sw), num(sp), num(sc)
      if not sc then error({ err = 'ERR ratewall: malformed sliding-window state in ' .. key }) end
      if window == sw then
        prev, cur, held = sp, sc, sc
      elseif window == sw + 1 then
        prev = sc
      elseif window < sw then
        -- The stored window lies ahead of `now` (the clock stepped back): decide at its start.
        window, elapsed, delay, prev, cur, held = sw, 0, sw * period - now, sp, sc, sc
      end
    end
    -- Weighted use prev·(period - elapsed) + c·period against limit·period; both sides of
    -- every comparison stay <= limit·period.
    local weighted = prev * (period - elapsed)
    local c = cur
    if refund then
      local from_cur = cost
      if from_cur > cur then from_cur = cur end
      local from_prev = cost - from_cur
      if from_prev > prev then from_prev = prev end
      prev, cur, c = prev - from_prev, cur - from_cur, cur - from_cur
      weighted = prev * (period - elapsed)
      allowed, retry = 1, 0
      if from_cur + from_prev > 0 then kind = 3 end
    elseif cur + cost <= limit and weighted <= (limit - cur - cost) * period then
      allowed, retry, c = 1, 0, cur + cost
      kind = 3
    else
      allowed = 0
      -- Earliest elapsed time e with weight·(period - e) + other·period <= limit·period.
      local wait = nil
      if cur + cost <= limit and prev > 0 then
        local x = (limit - cur - cost) * period
        local q = floor(x / prev)
        while q * prev > x do q = q - 1 end
        while (q + 1) * prev <= x do q = q + 1 end
        local at = 0
        if q < period then at = period - q end
        if at < period then wait = at - elapsed end
      end
      if wait == nil then
        local q = period
        if cur > 0 then
          local x = (limit - cost) * period
          q = floor(x / cur)
          while q * cur > x do q = q - 1 end
          while (q + 1) * cur <= x do q = q + 1 end
        end
        local at = 0
        if q < period then at = period - q end
        wait = (period - elapsed) + at
      end
      retry = wait + delay
    end
    local spare = (limit - c) * period
    remaining = 0
    if c <= limit and weighted <= spare then
      local x = spare - weighted
      remaining = floor(x / period)
      while remaining * period > x do remaining = remaining - 1 end
      while (remaining + 1) * period <= x do remaining = remaining + 1 end
    end
    reset = 0
    if c > 0 then reset = 2 * period - elapsed + delay
    elseif prev > 0 then reset = period - elapsed + delay end
    if kind == 3 then
      x2, x3, x4, ttl = window, prev, c, reset
      -- A key holding a count of this window expires two periods after the window's start,
      -- where this write's state expires too if it still holds one.
      if held > 0 and c > 0 then keep = 1 end
    end

  else
    ---------------------------------------------------------------------------------------
    -- Sliding log (core/src/sliding_log.rs). State: a list of the last `limit` expiries
    -- (oldest first, sorted), followed by `t_seen`.
    ---------------------------------------------------------------------------------------
    local limit, period = a, b
    if limit > 100000 then return redis.error_reply('ERR ratewall: sliding log limit out of range') end
    -- The client never asks for more than the log holds (the core's InsufficientCapacity).
    if cost > limit and not refund then
      return redis.error_reply('ERR ratewall: cost exceeds the sliding log limit')
    end
    local n, seen = 0, 0
    stored, limit_sl, sl_key = 0, limit, key
    if refund then
      raw = call('LRANGE', key, 0, -1)
      n = #raw
      if n > 0 then seen, stored = num(raw[n]), n - 1 end
    else
      raw = nil
      n = call('LLEN', key)
      if n > 0 then seen, stored = num(call('LINDEX', key, -1)), n - 1 end
    end
    if refund then
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
        kind, x2, x3, x4, ttl = 5, stored - limit + first - 1, stored - limit + last - 1, at, reset
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
        kind, x2, x3, x4, ttl = 4, n, exp, at, exp - now
      end
    end
  end

  if allowed == 0 then all = false end
  if w then
    local base = 6 * (i - 1)
    out[i] = fmt('%d %d %d %d', allowed, remaining, retry, reset)
    w[base + 1], w[base + 2], w[base + 3], w[base + 4], w[base + 5], w[base + 6] =
      kind, x2, x3, x4, ttl, keep
  end
end

if op ~= 'peek' and (refund or all) then
  for i = 1, nkeys do
    local key = KEYS[k0 + i]
    if w then
      local base = 6 * (i - 1)
      kind, x2, x3, x4, ttl, keep =
        w[base + 1], w[base + 2], w[base + 3], w[base + 4], w[base + 5], w[base + 6]
      -- Two identical limits share one key and decided alike on the same state: write it once.
      for j = 1, i - 1 do
        if KEYS[k0 + j] == key and w[6 * (j - 1) + 1] ~= 0 then kind = 0 end
      end
    end
    if kind ~= 0 then
      local px
      if keep == 0 then
        px = floor((ttl + 999) / 1000)
        while px * 1000 > ttl + 999 do px = px - 1 end
        if px < 1 then px = 1 end
        px = px + slack
      end
      if kind == 1 then
        call('SET', key, x2, 'PX', px)
      elseif kind == 2 or kind == 3 then
        local value
        if kind == 2 then
          if x4 then value = fmt('%d', x2) .. x4 else value = fmt('%d%016d', x2, x3) end
        else
          value = fmt('%d:%d:%d', x2, x3, x4)
        end
        if keep == 1 then
          call('SET', key, value, 'KEEPTTL')
        else
          call('SET', key, value, 'PX', px)
        end
      elseif kind == 4 then
        -- Admit: drop t_seen, append `cost` expiries and the new t_seen, keep the last `limit`.
        local limit = arg(a0 + 2 + 2 * i)
        if x2 > 0 then call('RPOP', key) end
        local sexp = fmt('%d', x3)
        local chunk = {}
        for j = 1, cost do
          chunk[#chunk + 1] = sexp
          if #chunk == 1000 or j == cost then
            call('RPUSH', key, unpack(chunk))
            chunk = {}
          end
        end
        call('RPUSH', key, x4)
        call('LTRIM', key, -(limit + 1), -1)
        call('PEXPIRE', key, px)
      else
        -- Refund: the forgotten entries (list positions x2..x3) and t_seen become `at`.
        for j = x2, x3 do call('LSET', key, j, x4) end
        call('LSET', key, -1, x4)
        call('PEXPIRE', key, px)
      end
    end
  end
end
if w then return table.concat(out, ' ') end
-- Two numbers to format instead of four, in the usual case: formatting is dear in Lua 5.1.
if allowed == 1 and retry == 0 then return fmt('1 %d 0 %d', remaining, reset) end
return fmt('%d %d %d %d', allowed, remaining, retry, reset)
