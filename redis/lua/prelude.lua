-- ratewall's scripts, part 1 of 2: what both entry points share (see redis/src/script.rs).
-- Each script is this prelude followed by its entry: `decide.lua` run once (one decision per
-- call), or `batch.lua` running it for each of many decisions in one call. The arguments below
-- are one decision's, as `decide.lua` reads them: from ARGV[a0 + 1] and KEYS[k0 + 1] on (a0 and
-- k0 are 0 for a call of one decision).
--
-- KEYS[i]   the state of limit i for one client (all in one hash slot)
-- ARGV[1]   operation: check | peek | refund
-- ARGV[2]   algorithm: tb (token bucket, GCRA) | fw (fixed window) | fwa (aligned fixed window)
--           | sw (sliding window counter) | sl (sliding log)
-- ARGV[3]   cost (permits, >= 1)
-- ARGV[2+2i], ARGV[3+2i]   limit i: tb -> interval_us, burst; others -> limit, period_us
-- Tests only, after the limits: an explicit time in integer microseconds (instead of Redis
-- TIME), then milliseconds added to every TTL.
--
-- Returns one string of integers separated by spaces, per limit: allowed (0/1), remaining,
-- retry_after_us, reset_after_us. (The limit itself, `burst` or `limit`, is a parameter: the
-- client knows it.) A string, because Redis converts a table reply field by field, at about
-- the cost of a GET.
--
-- The arithmetic mirrors ratewall's core rules (core/src/*.rs) over integer microseconds. Lua
-- numbers are doubles: every value below stays an integer no larger than 2^53, so every
-- operation is exact (the client checks the bounds; the script checks them again). Numbers go
-- to Redis as redis.call arguments, which Redis writes as exact integers ('%.17g' before 7.2,
-- integer formatting since), or through string.format('%d'), never through tostring (14 digits).
-- A denial writes nothing; every write leaves the key a TTL, so idle state vanishes: PX / PEXPIRE
-- sets it, except where the key already expires exactly when the new state would (a fixed
-- window or sliding window counter written again within the same window), where the write keeps
-- it (KEEPTTL): setting an expiry again costs Redis more than the rest of the write.
--
-- Speed: Redis runs the whole script on every call, and in its Lua every closure or table costs
-- about as much as a GET. So the algorithms are inline branches, not functions; floor(a / b) is
-- corrected inline where it must be exact; a one-limit policy (the usual case) builds no table
-- but its reply; the writes of a policy of several limits (made only once every limit has
-- decided) are kept as numbers in one flat table.

local MAX_TIME = 4503599627370496      -- 2^52 us: year 2112
local MAX_SPAN = 2251799813685248      -- 2^51 us: periods and token-bucket tolerance
local floor, num = math.floor, tonumber
local call = redis.call
local fmt, sub = string.format, string.sub

-- Redis sets KEYS and ARGV as globals; locals are cheaper to reach.
local KEYS, ARGV = KEYS, ARGV

-- `arg(i)`: ARGV[i] as a number (nil when it is not one). A batch's decisions mostly share one
-- policy, so the same argument strings come again and again; Lua interns strings, so finding
-- one in a table costs a third of `tonumber` (about 60 against 90-190 ns in Lua 5.1). Hot
-- paths look in `parsed` inline (`parsed[ARGV[i]] or arg(i)`) and call `arg` only for a string
-- not seen yet (or not a number).
local parsed = {}
local function arg(i)
  local s = ARGV[i]
  if s == nil then return nil end
  local v = parsed[s]
  if v == nil then
    v = num(s) or false
    parsed[s] = v
  end
  return v or nil
end

-- The last cost and limit parameters found in range: the same values (a batch's usual case)
-- are not checked again.
local checked_cost, checked_a, checked_b
