-- Record outcomes of running deliveries. ARGV 2: JSON array of [id, token, outcome, data,
-- delay_ms]; KEYS[NK + i], KEYS[NK + n + i]: the hash and the checkpoints of row i's job (n rows).
-- Derived (keys.py): the stream each job hash names, and this minute's counters.
-- Outcomes: completed (data = result JSON), failed (data = error), cancelled, retry (data =
-- error; due after delay_ms), defer (pending again after delay_ms, the attempt not counted),
-- requeue (back to pending now).
-- Returns per job 1 (written), 2 (written before under this token: a retried call whose reply
-- was lost) or 0 (fenced off: the token is not the current delivery's).
-- done_token is written with the outcome's fields (one HSET).
-- Retention: only terminal jobs get the TTL; a job waiting again (retry, defer, requeue) has none.

local function run()
  local out = {}
  local rows = cjson.decode(ARGV[2])
  if #rows > 1 then DEFER = deferred() end
  for i, row in ipairs(rows) do
    local id, token, outcome, data = row[1], row[2], row[3], row[4]
    local jk = KEYS[NK + i]
    local h = redis.call('HMGET', jk, 'token', 'status', 'stream', 'entry', 'priority', 'done_token')
    if h[1] ~= token then
      out[#out + 1] = (h[6] == token) and 2 or 0
    else
      drop_entry(h[3], h[4])
      if outcome == 'completed' then
        finish(jk, id, h[2], 'completed', 'done_token', token, 'result', data)
        local ck = KEYS[NK + #rows + i]  -- the result holds what the checkpoints recorded
        if DEFER then table.insert(DEFER.checkpoints, ck) else redis.call('DEL', ck) end
      elseif outcome == 'failed' then
        dead_letter(jk, id, h[2], data, 'done_token', token)
      elseif outcome == 'cancelled' then
        finish(jk, id, h[2], 'cancelled', 'done_token', token)
      elseif outcome == 'retry' then
        redis.call('HSET', jk, 'status', 'retrying', 'error', data, 'updated_at', NOW_S,
          'done_token', token)
        redis.call('HDEL', jk, 'token', 'entry')
        redis.call('ZADD', key('delayed'), NOW_MS + tonumber(row[5]), id)
        move_index(id, h[2], 'retrying')
        ledger(id, 'retrying')
        count_minute('retrying')
      elseif outcome == 'defer' then
        redis.call('HSET', jk, 'status', 'pending', 'updated_at', NOW_S, 'done_token', token)
        redis.call('HINCRBY', jk, 'attempts', '-1')
        redis.call('HDEL', jk, 'token', 'entry')
        redis.call('ZADD', key('delayed'), NOW_MS + tonumber(row[5]), id)
        move_index(id, h[2], 'pending')
        ledger(id, 'pending')
      else
        redis.call('HSET', jk, 'status', 'pending', 'updated_at', NOW_S, 'done_token', token)
        redis.call('HDEL', jk, 'token')
        enter_stream(jk, id, h[5])
        move_index(id, h[2], 'pending')
      end
      out[#out + 1] = 1
    end
  end
  if DEFER then DEFER.flush() end
  return out
end
