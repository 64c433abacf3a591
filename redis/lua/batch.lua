-- The entry of many decisions per call. `decide` (decide.lua as a function of k0, a0, nkeys,
-- nargs, clock) is defined just above.
--
-- The decisions come in runs of consecutive decisions with the same arguments (one policy,
-- operation and cost: usually the whole batch), whose arguments are sent once:
--
-- ARGV[1]                            r, the number of runs
-- ARGV[3i - 1], ARGV[3i], ARGV[3i + 1]  run i's number of decisions m, and each decision's
--                                    number of keys and of arguments (i = 1..r)
-- then each run's arguments, once (as prelude.lua describes one decision's); KEYS holds every
-- decision's keys, in order.
--
-- Returns one string: per decision one line, in order, holding its reply as the one-decision
-- script returns it, or "E " and the error that decision met. The decisions are made one after
-- the other at one Redis TIME, read once: the same as the calls in a row at that instant, for
-- the cost of one (the fixed cost of a script call, TIME and the reply's trip are shared, and a
-- run's arguments are read and handed to Lua once). Each decision runs under pcall, so one
-- that fails (a key of the wrong type, a bad argument) fails alone; a decision writes only after
-- it has decided, so a failed one has written nothing.
local r = arg(1)
if not r or r < 1 or r ~= floor(r) or #ARGV < 1 + 3 * r then
  return redis.error_reply('ERR ratewall: malformed batch')
end
-- Each run's counts, checked.
local ms, nks, nas = {}, {}, {}
local total_keys, total_args = 0, 1 + 3 * r
for i = 1, r do
  local at = 3 * i - 1
  local m, nk, na = arg(at), arg(at + 1), arg(at + 2)
  if not m or not nk or not na or m < 1 or nk < 1 or na < 3 or m ~= floor(m) or nk ~= floor(nk)
      or na ~= floor(na) then
    return redis.error_reply('ERR ratewall: malformed batch')
  end
  ms[i], nks[i], nas[i] = m, nk, na
  total_keys, total_args = total_keys + m * nk, total_args + na
end
if total_keys ~= #KEYS or total_args ~= #ARGV then
  return redis.error_reply('ERR ratewall: malformed batch')
end
local t = call('TIME')
local clock = num(t[1]) * 1000000 + num(t[2])
local out, d = {}, 0
local k0, a0 = 0, 1 + 3 * r
for i = 1, r do
  local nk, na = nks[i], nas[i]
  for _ = 1, ms[i] do
    d = d + 1
    local ok, reply = pcall(decide, k0, a0, nk, na, clock)
    if ok and type(reply) == 'string' then
      out[d] = reply
    else
      -- A returned redis.error_reply, or a raised error (a table with `err`, or a message).
      if type(reply) == 'table' then reply = reply.err end
      out[d] = 'E ' .. string.gsub(tostring(reply), '\n', ' ')
    end
    k0 = k0 + nk
  end
  a0 = a0 + na
end
return table.concat(out, '\n')
