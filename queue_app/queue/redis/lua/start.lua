-- Start deliveries read by a blocking XREADGROUP or taken over by claim. ARGV 8: worker id,
-- 9: count, then per entry: level, entry id, job id. Returns {dead-lettered count, HMGET of each
-- started job...}. Cancelled, finished and orphan entries are acked and deleted; entries of jobs
-- already running under another consumer are left alone; entries without a job hash are
-- dead-lettered, and so are jobs delivered more than max_attempts times.
WORKER = ARGV[8]
for i = 0, tonumber(ARGV[9]) - 1 do
  local b = 10 + i * 3
  deliver(ARGV[b], ARGV[b + 1], ARGV[b + 2])
end
return OUT
