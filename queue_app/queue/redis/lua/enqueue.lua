-- Add jobs. ARGV 2: JSON array of [id, priority, delay_ms, max_attempts, created_at, payload JSON,
-- metadata JSON, scope tags], priority and max_attempts as strings (written as they are: Lua
-- would format numbers); ARGV 3: most waiting jobs the queue may hold, or -1 (no limit);
-- ARGV 4 (optional) "1": all or none: when any row's id is known (or twice in the rows), none
-- is added, and the reply's 0s name those rows.
-- KEYS after the queue's: the job hash of each row, then the scope indexes of the rows' tags and
-- the streams of their priorities other than 0 (declared; the script names them as keys.py does).
-- Derived (keys.py): job hashes of ids read from a scope index.
-- Returns per job 1 (added) or 0 (id already known); the error QUEUEFULL <waiting> <limit> when
-- the new jobs would take the waiting ones (pending, delayed, retrying) past the limit: then
-- none is added. A waiting job has no TTL: retention starts when it is terminal.
-- A scope index drops the ids of jobs gone from Redis: its two oldest at each enqueue, any that a
-- listing walks over (scoped.lua); it expires 2 x TTL after its last enqueue.
local function run()
  local rows = cjson.decode(ARGV[2])
  local limit = tonumber(ARGV[3])
  if ARGV[4] == '1' then
    local known, out, seen = false, {}, {}
    for i, row in ipairs(rows) do
      out[i] = (seen[row[1]] or redis.call('EXISTS', KEYS[NK + i]) == 1) and 0 or 1
      known = known or out[i] == 0
      seen[row[1]] = true
    end
    if known then return out end
  end
  if limit >= 0 then
    local new, seen = 0, {}
    for i, row in ipairs(rows) do
      if not seen[row[1]] and redis.call('EXISTS', KEYS[NK + i]) == 0 then new = new + 1 end
      seen[row[1]] = true
    end
    local waiting = redis.call('ZCARD', index_key('pending'))
      + redis.call('ZCARD', index_key('retrying'))
    if new > 0 and waiting + new > limit then
      return redis.error_reply('QUEUEFULL ' .. waiting .. ' ' .. limit)
    end
  end
  -- Numbers passed to redis.call are formatted on every call: format these once.
  local now_ms, scope_ttl = tostring(NOW_MS), tostring(2 * TTL)
  local out = {}
  for i, row in ipairs(rows) do
    local id = row[1]
    local jk = KEYS[NK + i]
    if redis.call('EXISTS', jk) == 1 then
      out[#out + 1] = 0
    else
      local delay = tonumber(row[3])
      if delay > 0 then
        redis.call('ZADD', key('delayed'), NOW_MS + delay, id)
        redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', row[2],
          'attempts', '0', 'max_attempts', row[4], 'created_at', row[5],
          'updated_at', NOW_S, 'payload', row[6], 'metadata', row[7])
      else  -- the same fields and its entry's, in one HSET (a table to unpack costs more)
        local entry, level = add_entry(id, row[2])
        redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', row[2],
          'attempts', '0', 'max_attempts', row[4], 'created_at', row[5],
          'updated_at', NOW_S, 'payload', row[6], 'metadata', row[7], 'entry', entry, 'stream', level)
      end
      move_index(id, nil, 'pending')
      for _, tag in ipairs(row[8] or {}) do
        local sk = QBASE .. 'by:' .. tag
        for _, old in ipairs(redis.call('ZRANGE', sk, 0, 1)) do
          if redis.call('EXISTS', job_key(old)) == 0 then redis.call('ZREM', sk, old) end
        end
        redis.call('ZADD', sk, now_ms, id)
        redis.call('EXPIRE', sk, scope_ttl)
      end
      ledger(id, 'pending')
      out[#out + 1] = 1
    end
  end
  -- The queue registry is a global key (another slot): declared, and written, only on one server.
  if not CLUSTER then redis.call('SADD', key('queues'), Q) end
  return out
end
