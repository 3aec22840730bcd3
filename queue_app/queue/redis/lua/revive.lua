-- Run a failed or cancelled job again as a new attempt. ARGV 8: job id. Returns 1, or 0 when the
-- job is unknown or not failed/cancelled.
local id = ARGV[8]
local jk = job_key(Q, id)
local h = redis.call('HMGET', jk, 'status', 'priority')
if h[1] ~= 'failed' and h[1] ~= 'cancelled' then return 0 end
redis.call('ZREM', dead_key(Q), id)
redis.call('HSET', jk, 'status', 'pending', 'attempts', '0', 'updated_at', NOW_S)
redis.call('HDEL', jk, 'completed_at', 'started_at', 'token', 'done_token')
enter_stream(jk, id, h[2])
redis.call('PERSIST', jk)
move_index(id, h[1], 'pending')
ledger(id, 'pending')
return 1
