-- Add jobs. ARGV 7: count, then per job: id, priority, delay_ms, max_attempts, created_at,
-- payload JSON, metadata JSON. Returns per job 1 (added) or 0 (id already known).
local out = {}
for i = 0, tonumber(ARGV[7]) - 1 do
  local b = 8 + i * 7
  local id = ARGV[b]
  local jk = job_key(Q, id)
  if redis.call('EXISTS', jk) == 1 then
    out[#out + 1] = 0
  else
    local delay = tonumber(ARGV[b + 2])
    redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', ARGV[b + 1],
      'attempts', '0', 'max_attempts', ARGV[b + 3], 'created_at', ARGV[b + 4],
      'updated_at', NOW_S, 'payload', ARGV[b + 5], 'metadata', ARGV[b + 6])
    redis.call('EXPIRE', jk, TTL)
    if delay > 0 then
      redis.call('ZADD', delayed_key(Q), NOW_MS + delay, id)
    else
      enter_stream(jk, id, ARGV[b + 1])
    end
    move_index(id, nil, 'pending')
    ledger(id, 'pending')
    out[#out + 1] = 1
  end
end
return out
