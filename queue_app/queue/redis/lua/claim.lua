-- Take over deliveries idle longer than ARGV 9 ms for consumer ARGV 8, at most ARGV 10 of them.
-- A taken-over running job goes back to pending (its old token is void). Returns a flat list
-- level, entry id, job id for each delivery the caller must start.
local consumer, min_idle, limit = ARGV[8], ARGV[9], tonumber(ARGV[10])
local out = {}
local taken = 0

local function field(kv, name)
  for j = 1, #kv, 2 do if kv[j] == name then return kv[j + 1] end end
  return ''
end

local function take(level, entry, id)
  local jk = job_key(Q, id)
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

for _, level in ipairs(levels_desc(Q)) do
  local cursor = '0-0'
  repeat
    local r = redis.pcall('XAUTOCLAIM', stream_key(Q, level), GROUP, consumer, min_idle, cursor,
      'COUNT', limit - taken)
    if type(r) ~= 'table' or r.err then break end
    cursor = r[1]
    for _, e in ipairs(r[2]) do
      if type(e) == 'table' and e[1] then take(level, e[1], field(e[2] or {}, 'job_id')) end
    end
  until cursor == '0-0' or taken >= limit
  if taken >= limit then break end
end
return out
