-- Shared helpers of the scripts, after call.lua (the state of a call) in the library (scripts.py).
-- ARGV[1] holds the settings (call.lua); a script's own arguments start at ARGV[2]. Keys: key(name)
-- (the queue's, SCRIPT_KEYS in keys.py), KEYS[NK + 1]... (per job), or derived (see keys.py).
-- Numbers passed to redis.call are formatted on every call (%.17g): values used as arguments are
-- kept as strings.
local TERMINAL = {completed = true, failed = true, cancelled = true}

-- The value of field `name` in a flat reply of fields and values ('' when missing).
local function field(kv, name)
  for j = 1, #kv, 2 do if kv[j] == name then return kv[j + 1] end end
  return ''
end

local function move_index(id, old, new)
  if DEFER then return DEFER.move(id, old, new) end
  if old and old ~= new then redis.call('ZREM', index_key(old), id) end
  redis.call('ZADD', index_key(new), NOW_MS, id)
end

-- Most jobs one ledger entry names (a call of several jobs): a reader's batch of entries stays
-- bounded in jobs.
local LEDGER_IDS = 20

-- Add one ledger entry: the jobs `ids` reached `status`. One job: fields job_id and status; more:
-- job_ids (a JSON array) and status.
local function ledger_entry(status, ids)
  local lk = key('ledger')
  if #ids == 1 then
    redis.call('XADD', lk, 'MAXLEN', '~', LEDGER_MAX, '*', 'job_id', ids[1], 'status', status)
  else
    redis.call('XADD', lk, 'MAXLEN', '~', LEDGER_MAX, '*', 'job_ids', cjson.encode(ids),
      'status', status)
  end
end

-- Feed the database ledger: one event per enqueue, retry and terminal transition; a call of
-- several jobs (DEFER) writes its events at its end, up to LEDGER_IDS jobs an entry.
local function ledger(id, status)
  if tonumber(LEDGER_MAX) <= 0 then return end  -- 0: no ledger events
  if DEFER then return DEFER.ledger(id, status) end
  ledger_entry(status, {id})
end

-- Add the stream entry of job `id` to the stream of its priority; return the entry id, the level
-- and whether the stream was missing. A stream and its level in `levels` come and go together
-- (promote.lua deletes both), so an existing stream needs no other write; a missing one (a new
-- level, or keys a restart or a flush lost) is made with its group and its level first.
local function add_entry(id, priority)
  local level = level_of(priority)
  local sk = stream_key(level)
  local entry = redis.call('XADD', sk, 'NOMKSTREAM', '*', 'job_id', id)
  if entry then return entry, level, false end
  redis.call('ZADD', key('levels'), 'NX', level, level)
  redis.pcall('XGROUP', 'CREATE', sk, GROUP, '0', 'MKSTREAM')
  return redis.call('XADD', sk, '*', 'job_id', id), level, true
end

local function drop_entry(level, entry)
  if not (level and entry) then return end
  if DEFER then return DEFER.drop(level, entry) end
  local sk = stream_key(level)
  redis.call('XACK', sk, GROUP, entry)
  redis.call('XDEL', sk, entry)
end

local function count_minute(status)
  if DEFER then return DEFER.count(status) end
  local mk = minute_key(string.format('%d', NOW_MS / 60000))
  if redis.call('HINCRBY', mk, status, '1') == 1 then redis.call('EXPIRE', mk, '7200') end
end

-- The writes a call of several jobs defers (DEFER; finish.lua, enqueue.lua): index moves netted
-- per job (the index it left first, the one it is in last), entries to ack and delete per
-- stream, minute counts and ledger events per status, checkpoints to delete; flush() writes
-- them, one command per key (ledger: per LEDGER_IDS jobs). Its helpers are made per call: a
-- call of one job makes no closure.
local function deferred()
  -- Add `value` to the list groups[key], keeping the keys in first-seen order.
  local function add_to(order, groups, key, value)
    local group = groups[key]
    if not group then
      group = {}
      groups[key] = group
      order[#order + 1] = key
    end
    group[#group + 1] = value
  end

  -- redis.call(command, key[, arg], values...) with at most `step` values a call (unpack's limit).
  local function call_chunked(step, values, command, key, arg)
    for i = 1, #values, step do
      local last = math.min(i + step - 1, #values)
      if arg then
        redis.call(command, key, arg, unpack(values, i, last))
      else
        redis.call(command, key, unpack(values, i, last))
      end
    end
  end

  local moved, left, now_in = {}, {}, {}
  local levels, entries, statuses, counts, checkpoints = {}, {}, {}, {}, {}
  local ledger_statuses, ledger_ids = {}, {}
  local d = {checkpoints = checkpoints}
  function d.move(id, old, new)
    if now_in[id] == nil then
      moved[#moved + 1] = id
      left[id] = old or false
    end
    now_in[id] = new
  end
  function d.drop(level, entry) add_to(levels, entries, level, entry) end
  function d.ledger(id, status) add_to(ledger_statuses, ledger_ids, status, id) end
  function d.count(status)
    if not counts[status] then
      statuses[#statuses + 1] = status
      counts[status] = 0
    end
    counts[status] = counts[status] + 1
  end
  function d.flush()
    local removed, removed_from, added, added_to = {}, {}, {}, {}
    for _, id in ipairs(moved) do
      if left[id] and left[id] ~= now_in[id] then add_to(removed, removed_from, left[id], id) end
      add_to(added, added_to, now_in[id], NOW_MS)
      add_to(added, added_to, now_in[id], id)
    end
    for _, status in ipairs(removed) do
      call_chunked(500, removed_from[status], 'ZREM', index_key(status))
    end
    for _, status in ipairs(added) do
      call_chunked(1000, added_to[status], 'ZADD', index_key(status))
    end
    for _, level in ipairs(levels) do
      call_chunked(500, entries[level], 'XACK', stream_key(level), GROUP)
      call_chunked(500, entries[level], 'XDEL', stream_key(level))
    end
    local mk = minute_key(string.format('%d', NOW_MS / 60000))
    for _, status in ipairs(statuses) do
      if redis.call('HINCRBY', mk, status, counts[status]) == counts[status] then
        redis.call('EXPIRE', mk, '7200')
      end
    end
    for i = 1, #checkpoints, 500 do
      redis.call('DEL', unpack(checkpoints, i, math.min(i + 499, #checkpoints)))
    end
    for _, status in ipairs(ledger_statuses) do
      local ids = ledger_ids[status]
      for i = 1, #ids, LEDGER_IDS do
        ledger_entry(status, {unpack(ids, i, math.min(i + LEDGER_IDS - 1, #ids))})
      end
    end
  end
  return d
end

local function finish(jk, id, old, status, ...)
  redis.call('HSET', jk, 'status', status, 'completed_at', NOW_S, 'updated_at', NOW_S, ...)
  if status == 'completed' then
    redis.call('HDEL', jk, 'token', 'entry', 'error')
  else
    redis.call('HDEL', jk, 'token', 'entry')
  end
  redis.call('EXPIRE', jk, TTL)
  move_index(id, old, status)
  ledger(id, status)
  count_minute(status)
end

local function dead_letter(jk, id, old, reason, ...)
  finish(jk, id, old, 'failed', 'error', reason, ...)
  local dk = key('dead')
  redis.call('ZADD', dk, NOW_MS, id)
  if tonumber(DEAD_MAX) > 0 then redis.call('ZREMRANGEBYRANK', dk, 0, -(DEAD_MAX + 1)) end
end

local function enter_stream(jk, id, priority)
  local entry, level = add_entry(id, priority)
  redis.call('HSET', jk, 'entry', entry, 'stream', level)
  return entry
end

local function dead_entry(level, entry, id)
  local sk = stream_key(level)
  local raw = redis.call('XRANGE', sk, entry, entry)
  drop_entry(level, entry)
  local dead_id = (id ~= '' and id) or ('entry-' .. entry)
  local jk = job_key(dead_id)  -- derived: no job hash to pass for an entry read in the script
  local fields = {}
  if raw[1] then
    local kv = raw[1][2]
    for j = 1, #kv, 2 do fields[kv[j]] = kv[j + 1] end
  end
  redis.call('HSET', jk, 'id', dead_id, 'queue', Q, 'priority', '0', 'attempts', '0',
    'max_attempts', '0', 'created_at', NOW_S, 'payload', cjson.encode(fields), 'metadata', '{}')
  local reason = (id ~= '' and 'job data missing or expired') or 'undecodable stream entry'
  dead_letter(jk, dead_id, nil, reason)
  OUT[1] = OUT[1] + 1
end

-- Start the job of hash jk, whose job_values are h: its values as they are now go to OUT (the
-- JOB_FIELDS, without the entry), with no second read of the hash.
local function start(jk, id, entry, attempts, h)
  local token = entry .. '/' .. attempts
  redis.call('HSET', jk, 'status', 'processing', 'attempts', attempts, 'started_at', NOW_S,
    'updated_at', NOW_S, 'worker_id', WORKER, 'token', token)
  move_index(id, 'pending', 'processing')
  h[J_STATUS], h[J_ATTEMPTS], h[J_STARTED_AT] = 'processing', attempts, NOW_S
  h[J_WORKER_ID], h[J_TOKEN], h[J_ENTRY] = WORKER, token, nil
  OUT[#OUT + 1] = h
end


-- Start one delivery read from a stream or taken over, appending to OUT (see start.lua); jk is
-- the job hash when the caller passed it, else derived from the id read in the script.
local function deliver(level, entry, id, jk)
  if id == '' then return dead_entry(level, entry, id) end
  jk = jk or job_key(id)
  local h = job_values(jk)
  local status, attempts = h[J_STATUS], h[J_ATTEMPTS]
  if not status then
    dead_entry(level, entry, id)
  elseif status == 'processing' and h[J_ENTRY] == entry then
    -- running under another consumer since a takeover: not ours to touch
  elseif status ~= 'pending' or h[J_ENTRY] ~= entry then
    drop_entry(level, entry)
  elseif tonumber(attempts) >= tonumber(h[J_MAX_ATTEMPTS]) then
    drop_entry(level, entry)
    dead_letter(jk, id, 'pending', 'delivered more than max_attempts times')
    OUT[1] = OUT[1] + 1
  else
    start(jk, id, entry, string.format('%d', attempts + 1), h)
  end
end

-- Promote up to `limit` (a string) due jobs; return ms to next due or -1, and how many were
-- promoted.
local function promote_due(limit)
  local dk = key('delayed')
  local promoted = 0
  local nxt = redis.call('ZRANGE', dk, '0', '0', 'WITHSCORES')
  if nxt[2] and nxt[2] - NOW_MS <= 0 then  -- some job is due (else one call: none, or the next)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', dk, '-inf', NOW_MS, 'LIMIT', '0', limit)) do
      redis.call('ZREM', dk, id)
      local jk = job_key(id)  -- derived: an id read from the delayed set
      local h = redis.call('HMGET', jk, 'status', 'priority')
      if h[1] == 'pending' or h[1] == 'retrying' then
        redis.call('HSET', jk, 'status', 'pending', 'updated_at', NOW_S)
        enter_stream(jk, id, h[2])
        move_index(id, h[1], 'pending')
        promoted = promoted + 1
      end
    end
    nxt = redis.call('ZRANGE', dk, '0', '0', 'WITHSCORES')
  end
  if nxt[2] then return math.max(nxt[2] - NOW_MS, 0), promoted end
  return -1, promoted
end
