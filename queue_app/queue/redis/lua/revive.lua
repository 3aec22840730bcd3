-- Run a failed or cancelled job again as a new attempt. ARGV 2: job id; KEYS[NK + 1]: its hash.
-- Derived (keys.py): the stream of the job's priority. Returns 1, or 0 when the job is unknown or
-- not failed/cancelled.
local function run()
  local id = ARGV[2]
  local jk = KEYS[NK + 1]
  local h = redis.call('HMGET', jk, 'status', 'priority')
  if h[1] ~= 'failed' and h[1] ~= 'cancelled' then return 0 end
  redis.call('ZREM', key('dead'), id)
  redis.call('HSET', jk, 'status', 'pending', 'attempts', '0', 'updated_at', NOW_S)
  redis.call('HDEL', jk, 'completed_at', 'started_at', 'token', 'done_token')
  enter_stream(jk, id, h[2])
  redis.call('PERSIST', jk)
  move_index(id, h[1], 'pending')
  ledger(id, 'pending')
  return 1
end
