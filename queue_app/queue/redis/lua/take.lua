-- Promote due delayed jobs, then start up to ARGV 4 deliveries for consumer ARGV 2 / worker ARGV 3:
-- first this consumer's pending entries newer than the cursors ARGV 5... (pairs level, entry id:
-- what a blocking XREADGROUP sent just before this call in the same pipeline delivered to it),
-- then new entries, from the highest priority in use down: one round trip for a whole batch.
-- Returns {dead-lettered count, ms until next due job or -1, cursors, HMGET of each started
-- job...}; cursors (flat level, id) bound what each level delivered so far when fewer than
-- ARGV 4 started (the levels ran dry: the worker blocks next, and what its blocking read
-- delivers is newer; see cursors), else empty.
-- Derived (keys.py): the streams of the levels in use and the job hashes of the entries read,
-- known only here (reading them first would cost a round trip per batch), this minute's counters.
-- A call's own state, set by run() (the helpers below are made once, with the library).
local consumer, count, started, last_read

local function start_entry(level, entry, kv)
  local before = #OUT
  deliver(level, entry, field(kv, 'job_id'))
  started = started + (#OUT - before)
end

-- Entries delivered to this consumer after the cursor by its blocking read; an entry deleted
-- meanwhile (cancel.lua acks it too) no longer shows here.
local function start_read(level, cursor)
  local sk = stream_key(level)
  local pel = redis.pcall('XPENDING', sk, GROUP, '(' .. cursor, '+', count - started, consumer)
  if type(pel) ~= 'table' or pel.err then return end
  for _, p in ipairs(pel) do
    local raw = redis.call('XRANGE', sk, p[1], p[1])
    if raw[1] then start_entry(level, p[1], raw[1][2]) end
  end
end

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

-- The last entry each level's read returned is the group's last-delivered id. After a read that
-- returned none, no entry past that id is left, so the stream's last entry (0-0: none) is a
-- cursor too: every entry this consumer holds is at or before it (an entry leaves the stream
-- only once acked), and what a later read delivers is added after it. No XINFO GROUPS (it
-- costs more than the rest of an empty take).
local function cursors(levels)
  local flat = {}
  for _, level in ipairs(levels) do
    local last = last_read[level]
    if not last then
      local tail = redis.call('XREVRANGE', stream_key(level), '+', '-', 'COUNT', '1')
      last = tail[1] and tail[1][1] or '0-0'
    end
    flat[#flat + 1] = level
    flat[#flat + 1] = last
  end
  return flat
end

local function run()
  WORKER = ARGV[3]
  consumer, count, started, last_read = ARGV[2], tonumber(ARGV[4]), 0, {}
  local next_due = promote_due('100')
  for i = 5, #ARGV - 1, 2 do
    if started < count then start_read(ARGV[i], ARGV[i + 1]) end
  end
  local levels = levels_desc()
  for _, level in ipairs(levels) do
    local want = count - started
    if want <= 0 then break end
    local reply = read(level, want)
    if reply then
      for _, e in ipairs(reply[1][2]) do
        start_entry(level, e[1], e[2] or {})
        last_read[level] = e[1]
      end
    end
  end
  table.insert(OUT, 2, next_due)
  table.insert(OUT, 3, started < count and cursors(levels) or {})
  return OUT
end
