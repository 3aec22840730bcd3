-- Promote due delayed jobs, then read and start up to ARGV 10 new entries for consumer ARGV 8 /
-- worker ARGV 9 from the levels listed in ARGV 11 ('high,normal,low'), highest first: one round
-- trip for a whole batch. Returns {dead-lettered count, ms until next due job or -1, HMGET of
-- each started job...}.
WORKER = ARGV[9]
local consumer, count = ARGV[8], tonumber(ARGV[10])
local next_due = promote_due(100)
local started = 0
for level in string.gmatch(ARGV[11], '[^,]+') do
  local want = count - started
  if want <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want,
    'STREAMS', stream_key(Q, level), '>')
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
