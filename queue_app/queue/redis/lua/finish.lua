-- Record outcomes of running deliveries. ARGV 7: count, then per job: id, token, outcome, data,
-- delay_ms. Outcomes: completed (data = result JSON), failed (data = error), cancelled,
-- retry (data = error; due after delay_ms), requeue (back to pending now).
-- Returns per job 1, or 0 when the token is not the current delivery's (fenced off).
local out = {}
for i = 0, tonumber(ARGV[7]) - 1 do
  local b = 8 + i * 5
  local id, token, outcome, data = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local jk = job_key(Q, id)
  local h = redis.call('HMGET', jk, 'token', 'status', 'stream', 'entry', 'priority')
  if h[1] ~= token then
    out[#out + 1] = 0
  else
    drop_entry(h[3], h[4])
    if outcome == 'completed' then
      finish(jk, id, h[2], 'completed', 'result', data)
      redis.call('HDEL', jk, 'error')
    elseif outcome == 'failed' then
      dead_letter(jk, id, h[2], data)
    elseif outcome == 'cancelled' then
      finish(jk, id, h[2], 'cancelled')
    elseif outcome == 'retry' then
      redis.call('HSET', jk, 'status', 'retrying', 'error', data, 'updated_at', NOW_S)
      redis.call('HDEL', jk, 'token', 'entry')
      redis.call('ZADD', delayed_key(Q), NOW_MS + tonumber(ARGV[b + 4]), id)
      redis.call('EXPIRE', jk, TTL)
      move_index(id, h[2], 'retrying')
      ledger(id, 'retrying')
      local mk = minute_key(Q, math.floor(NOW_MS / 60000))
      redis.call('HINCRBY', mk, 'retrying', 1)
      redis.call('EXPIRE', mk, 7200)
    else
      redis.call('HSET', jk, 'status', 'pending', 'updated_at', NOW_S)
      redis.call('HDEL', jk, 'token')
      enter_stream(jk, id, h[5])
      redis.call('EXPIRE', jk, TTL)
      move_index(id, h[2], 'pending')
    end
    out[#out + 1] = 1
  end
end
return out
