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

-- The writes a call of several jobs defers (lib.lua's DEFER): index moves netted per job (the
-- index it left first, the one it is in last), entries to ack and delete per stream, minute
-- counts per status, checkpoints to delete; flush() writes them, one command per key. Its
-- helpers are made here: a call of one job makes no closure it does not use.
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
  local d = {checkpoints = checkpoints}
  function d.move(id, old, new)
    if now_in[id] == nil then
      moved[#moved + 1] = id
      left[id] = old or false
    end
    now_in[id] = new
  end
  function d.drop(level, entry) add_to(levels, entries, level, entry) end
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
  end
  return d
end

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
