-- Add jobs. ARGV 8: JSON array of [id, priority, delay_ms, max_attempts, created_at, payload JSON,
-- metadata JSON]. Returns per job 1 (added) or 0 (id already known). A waiting job has no TTL:
-- retention starts when it is terminal.
local out = {}
for _, row in ipairs(cjson.decode(ARGV[8])) do
  local id = row[1]
  local jk = job_key(Q, id)
  if redis.call('EXISTS', jk) == 1 then
    out[#out + 1] = 0
  else
    local delay = tonumber(row[3])
    redis.call('HSET', jk, 'id', id, 'queue', Q, 'status', 'pending', 'priority', row[2],
      'attempts', '0', 'max_attempts', row[4], 'created_at', row[5],
      'updated_at', NOW_S, 'payload', row[6], 'metadata', row[7])
    if delay > 0 then
      redis.call('ZADD', delayed_key(Q), NOW_MS + delay, id)
    else
      enter_stream(jk, id, row[2])
    end
    move_index(id, nil, 'pending')
    ledger(id, 'pending')
    out[#out + 1] = 1
  end
end
-- The queue registry is a global key: one slot, so only outside cluster mode.
if not CLUSTER then redis.call('SADD', PREFIX .. 'queues', Q) end
return out
