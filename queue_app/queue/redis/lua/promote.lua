-- Move due delayed/retrying jobs into their stream and prune expired index members (only here,
-- not in take), then delete the streams of priorities other than 0 that hold no entry (none
-- waiting, none delivered) and forget those levels: each priority in use costs a stream only
-- while it is in use. A worker blocked reading a deleted stream wakes up with an UNBLOCKED
-- error, which it ignores.
-- Derived (keys.py): the job hashes of due ids and the streams of the levels in use (read here).
-- ARGV 2: max jobs to promote. Returns {promoted, ms until the next due job or -1}.
local function run()
  local next_due, promoted = promote_due(ARGV[2])
  -- Finished jobs expire TTL after they finished: drop them from their index sets too. Here, not
  -- in take: each worker promotes every second (maintenance.py), and retention is counted in days.
  local cutoff = string.format('%d', NOW_MS - TTL * 1000)
  redis.call('ZREMRANGEBYSCORE', index_key('completed'), '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', index_key('failed'), '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', index_key('cancelled'), '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', key('dead'), '-inf', cutoff)
  for _, level in ipairs(levels_desc()) do
    local sk = stream_key(level)
    if level ~= '0' and redis.call('XLEN', sk) == 0 then
      local pending = redis.pcall('XPENDING', sk, GROUP)
      if type(pending) ~= 'table' or pending.err or tonumber(pending[1]) == 0 then
        redis.call('DEL', sk)
        redis.call('ZREM', key('levels'), level)
      end
    end
  end
  return {promoted, next_due}
end
