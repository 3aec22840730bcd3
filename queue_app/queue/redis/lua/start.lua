-- Start deliveries read by a blocking XREADGROUP or taken over by claim. ARGV 2: worker id,
-- 3: count, then per entry: level, entry id, job id; KEYS[NK + i]: the hash of entry i's job, then
-- the streams of the levels other than 0. Derived (keys.py): the dead-letter hash of an entry
-- without a job id, this minute's counters. Returns {dead-lettered count, HMGET of each started
-- job...}. Cancelled, finished and orphan entries are acked and deleted; entries of jobs already
-- running under another consumer are left alone; entries without a job hash are dead-lettered,
-- and so are jobs delivered more than max_attempts times.
local function run()
  WORKER = ARGV[2]
  for i = 0, tonumber(ARGV[3]) - 1 do
    local b = 4 + i * 3
    deliver(ARGV[b], ARGV[b + 1], ARGV[b + 2], KEYS[NK + 1 + i])
  end
  return OUT
end
