-- Promote due delayed jobs, then read and start up to ARGV 4 new entries for consumer ARGV 2 /
-- worker ARGV 3, from the highest priority in use down: one round trip for a whole batch. Returns
-- {dead-lettered count, ms until next due job or -1, HMGET of each started job...}.
-- Derived (keys.py): the streams of the levels in use and the job hashes of the entries read,
-- known only here (reading them first would cost a round trip per batch), this minute's counters.
WORKER = ARGV[3]
local consumer, count = ARGV[2], tonumber(ARGV[4])
local next_due = promote_due(100)
local started = 0
local function read(level, want)
  local args = {'XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want, 'STREAMS',
    stream_key(level), '>'}
  local reply = redis.pcall(unpack(args))
  if type(reply) == 'table' and reply.err then  -- group lost with a Redis restart: recreate
    redis.pcall('XGROUP', 'CREATE', stream_key(level), GROUP, '0', 'MKSTREAM')
    reply = redis.call(unpack(args))
  end
  return reply
end

for _, level in ipairs(levels_desc()) do
  local want = count - started
  if want <= 0 then break end
  local reply = read(level, want)
  if reply then
    for _, e in ipairs(reply[1][2]) do
      local before = #OUT
      local kv = e[2] or {}
      local id = ''
      for j = 1, #kv, 2 do if kv[j] == 'job_id' then id = kv[j + 1] end end
      deliver(level, e[1], id)
      started = started + (#OUT - before)
    end
  end
end
table.insert(OUT, 2, next_due)
return OUT
