-- Take over deliveries idle longer than ARGV 3 ms for consumer ARGV 2, at most ARGV 4 of them.
-- A taken-over running job goes back to pending (its old token is void). Returns a flat list
-- level, entry id, job id for each delivery the caller must start. Consumers left with nothing
-- pending and idle past ARGV 3 ms are removed from the group.
-- With ARGV 5... (pairs level, entry id): take back only these entries, which consumer ARGV 2
-- holds but runs none of (a call that started them lost its reply), however idle they are.
-- Derived (keys.py): the streams of the levels in use and the job hashes of the entries claimed.
-- A call's own state, set by run() (the helpers below are made once, with the library).
local out, taken

local function take(level, entry, id)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'status', 'entry')
  if id ~= '' and h[1] and h[2] ~= entry then
    drop_entry(level, entry)
    return
  end
  if h[1] == 'processing' then
    redis.call('HSET', jk, 'status', 'pending', 'updated_at', NOW_S)
    redis.call('HDEL', jk, 'token')
    move_index(id, 'processing', 'pending')
  elseif h[1] and h[1] ~= 'pending' then
    drop_entry(level, entry)
    return
  end
  out[#out + 1] = level
  out[#out + 1] = entry
  out[#out + 1] = id
  taken = taken + 1
end

-- Take back the entries of ARGV 5... that `consumer` still holds: one acked meanwhile, or taken
-- over by another consumer, is left alone.
local function take_back(consumer)
  for i = 5, #ARGV - 1, 2 do
    local level, entry = ARGV[i], ARGV[i + 1]
    local sk = stream_key(level)
    local held = redis.pcall('XPENDING', sk, GROUP, entry, entry, '1', consumer)
    if type(held) == 'table' and held[1] then
      local raw = redis.call('XRANGE', sk, entry, entry)
      if raw[1] then  -- else deleted: nothing to run, and no longer anyone's
        take(level, entry, field(raw[1][2], 'job_id'))
      else
        redis.call('XACK', sk, GROUP, entry)
      end
    end
  end
  return out
end

local function run()
  local consumer, min_idle, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
  out, taken = {}, 0
  if #ARGV > 4 then return take_back(consumer) end
  for _, level in ipairs(levels_desc()) do
    local cursor = '0-0'
    repeat
      local r = redis.pcall('XAUTOCLAIM', stream_key(level), GROUP, consumer, min_idle, cursor,
        'COUNT', limit - taken)
      if type(r) ~= 'table' or r.err then break end
      cursor = r[1]
      for _, e in ipairs(r[2]) do
        if type(e) == 'table' and e[1] then take(level, e[1], field(e[2] or {}, 'job_id')) end
      end
    until cursor == '0-0' or taken >= limit
    if taken >= limit then break end
  end

  -- Forget the consumers of dead workers once their deliveries are taken over: nothing pending
  -- and idle past the takeover threshold (a live worker reads every second or less; one that was
  -- forgotten is created again by its next read).
  for _, level in ipairs(levels_desc()) do
    local sk = stream_key(level)
    local consumers = redis.pcall('XINFO', 'CONSUMERS', sk, GROUP)
    if type(consumers) == 'table' and not consumers.err then
      for _, info in ipairs(consumers) do
        local name = field(info, 'name')
        if name ~= consumer and tonumber(field(info, 'pending')) == 0
          and tonumber(field(info, 'idle')) >= tonumber(min_idle) then
          redis.call('XGROUP', 'DELCONSUMER', sk, GROUP, name)
        end
      end
    end
  end
  return out
end
