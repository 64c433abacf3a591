-- The entry of many decisions per call. `decide` (decide.lua as a function of k0, a0, nkeys,
-- nargs, clock) is defined just above.
--
-- ARGV[1]                 n, the number of decisions
-- ARGV[2d], ARGV[2d + 1]  decision d's number of keys and of arguments (d = 1..n)
-- then each decision's arguments in order (as prelude.lua describes them); KEYS holds each
-- decision's keys in the same order.
--
-- Returns one string: per decision one line, in order, holding its reply as the one-decision
-- script returns it, or "E " and the error that decision met. The decisions are made one after
-- the other at one Redis TIME, read once: the same as n calls in a row at that instant, for the
-- cost of one (the fixed cost of a script call, TIME and the reply's trip are shared). Each
-- decision runs under pcall, so one that fails (a key of the wrong type, a bad argument) fails
-- alone; a decision writes only after it has decided, so a failed one has written nothing.
local n = arg(1)
if not n or n < 1 or n ~= floor(n) or #ARGV < 1 + 2 * n then
  return redis.error_reply('ERR ratewall: malformed batch')
end
local total_keys, total_args = 0, 1 + 2 * n
-- Each decision's counts, checked (only when they differ from the last checked) and kept.
local nks, nas, ck, ca = {}, {}, nil, nil
for d = 1, n do
  local nk = parsed[ARGV[2 * d]] or arg(2 * d)
  local na = parsed[ARGV[2 * d + 1]] or arg(2 * d + 1)
  if nk ~= ck or na ~= ca then
    if not nk or not na or nk < 1 or na < 3 or nk ~= floor(nk) or na ~= floor(na) then
      return redis.error_reply('ERR ratewall: malformed batch')
    end
    ck, ca = nk, na
  end
  nks[d], nas[d] = nk, na
  total_keys, total_args = total_keys + nk, total_args + na
end
if total_keys ~= #KEYS or total_args ~= #ARGV then
  return redis.error_reply('ERR ratewall: malformed batch')
end
local t = call('TIME')
local clock = num(t[1]) * 1000000 + num(t[2])
local out = {}
local k0, a0 = 0, 1 + 2 * n
for d = 1, n do
  local nk, na = nks[d], nas[d]
  local ok, reply = pcall(decide, k0, a0, nk, na, clock)
  if ok and type(reply) == 'string' then
    out[d] = reply
  else
    -- A returned redis.error_reply, or a raised error (a table with `err`, or a message).
    if type(reply) == 'table' then reply = reply.err end
    out[d] = 'E ' .. string.gsub(tostring(reply), '\n', ' ')
  end
  k0, a0 = k0 + nk, a0 + na
end
return table.concat(out, '\n')
