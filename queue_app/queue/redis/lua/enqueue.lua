-- Add jobs. ARGV 2: most waiting jobs the queue may hold, or -1 (no limit); ARGV 3: "1" for all
-- or none (when any job's id is known, or twice in the call, none is added, and the reply's 0s
-- name those jobs), else "0"; then ROW arguments per job: id, priority, delay_ms,
-- max_attempts, created_at, payload JSON, metadata JSON, scope tags (a JSON array, '' for none),
-- priority and max_attempts as strings (written as they are: Lua would format numbers). One
-- argument per field: Redis hands them over as strings, with nothing to decode.
-- KEYS after the queue's: the job hash of each job, then the scope indexes of their tags and
-- the streams of their priorities other than 0 (declared; the script names them as keys.py does).
-- Derived (keys.py): job hashes of ids read from a scope index.
-- Returns per job 1 (added) or 0 (id already known); the error QUEUEFULL <waiting> <limit> when
-- the new jobs would take the waiting ones (pending, delayed, retrying) past the limit: then
-- none is added. A waiting job has no TTL: retention starts when it is terminal.
-- A scope index drops the ids of jobs gone from Redis: its two oldest at each enqueue, any that a
-- listing walks over (scoped.lua); it expires 2 x TTL after its last enqueue.
local ROW = 8

-- The id of job i (1-based) and the index in ARGV just before its arguments.
local function job_id(i)
  local b = 3 + (i - 1) * ROW
  return ARGV[b + 1], b
end

local function run()
  local jobs = (#ARGV - 3) / ROW
  local limit = tonumber(ARGV[2])
  if ARGV[3] == '1' then
    local known, out, seen = false, {}, {}
    for i = 1, jobs do
      local id = job_id(i)
      out[i] = (seen[id] or redis.call('EXISTS', KEYS[NK + i]) == 1) and 0 or 1
      known = known or out[i] == 0
      seen[id] = true
    end
    if known then return out end
  end
  if limit >= 0 then
    local new, seen = 0, {}
    for i = 1, jobs do
      local id = job_id(i)
      if not seen[id] and redis.call('EXISTS', KEYS[NK + i]) == 0 then new = new + 1 end
      seen[id] = true
    end
    local waiting = redis.call('ZCARD', index_key('pending'))
      + redis.call('ZCARD', index_key('retrying'))
    if new > 0 and waiting + new > limit then
      return redis.error_reply('QUEUEFULL ' .. waiting .. ' ' .. limit)
    end
  end
  local out, register, scope_ttl = {}, false, nil
  if jobs > 1 then DEFER = deferred() end  -- the pending index and the ledger: once per call
  for i = 1, jobs do
    local id, b = job_id(i)
    local jk = KEYS[NK + i]
    if redis.call('EXISTS', jk) == 1 then
      out[#out + 1] = 0
    else
      local priority, delay = ARGV[b + 2], tonumber(ARGV[b + 3])
      if delay > 0 then
        register = true
        redis.call('ZADD', key('delayed'), NOW_MS + delay, id)
        redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', priority,
          'attempts', '0', 'max_attempts', ARGV[b + 4], 'created_at', ARGV[b + 5],
          'updated_at', NOW_S, 'payload', ARGV[b + 6], 'metadata', ARGV[b + 7])
      else  -- the same fields and its entry's, in one HSET (a table to unpack costs more)
        local entry, level, made = add_entry(id, priority)
        register = register or made
        redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', priority,
          'attempts', '0', 'max_attempts', ARGV[b + 4], 'created_at', ARGV[b + 5],
          'updated_at', NOW_S, 'payload', ARGV[b + 6], 'metadata', ARGV[b + 7], 'entry', entry,
          'stream', level)
      end
      move_index(id, nil, 'pending')
      local tags = ARGV[b + 8]
      if tags ~= '' then
        -- A number passed to redis.call is formatted on every call: this one once per call.
        scope_ttl = scope_ttl or tostring(2 * TTL)
        for _, tag in ipairs(cjson.decode(tags)) do
          local sk = QBASE .. 'by:' .. tag
          for _, old in ipairs(redis.call('ZRANGE', sk, '0', '1')) do
            if redis.call('EXISTS', job_key(old)) == 0 then redis.call('ZREM', sk, old) end
          end
          redis.call('ZADD', sk, NOW_MS, id)
          redis.call('EXPIRE', sk, scope_ttl)
        end
      end
      ledger(id, 'pending')
      out[#out + 1] = 1
    end
  end
  -- The queue registry: written with a stream it made (its keys were lost with the stream's, or
  -- the queue is new) or a delayed job (no stream written). A global key (another slot):
  -- declared, and written, only on one server.
  if register and not CLUSTER then redis.call('SADD', key('queues'), Q) end
  if DEFER then DEFER.flush() end
  return out
end
