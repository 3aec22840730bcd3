-- Cancel a job that has not finished. ARGV 2: job id; KEYS[NK + 1]: its hash. Derived (keys.py):
-- the stream named by the job hash, this minute's counters. Returns 1, or 0 if unknown or terminal.
-- A running job's delivery is acked here; its worker sees the lost token at its next heartbeat.
local function run()
  local id = ARGV[2]
  local jk = KEYS[NK + 1]
  local h = redis.call('HMGET', jk, 'status', 'stream', 'entry')
  if not h[1] or TERMINAL[h[1]] then return 0 end
  redis.call('ZREM', key('delayed'), id)
  drop_entry(h[2], h[3])
  finish(jk, id, h[1], 'cancelled')
  return 1
end
