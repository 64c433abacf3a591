-- The entry of one decision per call: the whole of KEYS and ARGV is one decision's.
local k0, a0, nkeys, nargs, clock = 0, 0, #KEYS, #ARGV, nil
