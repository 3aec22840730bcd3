-- Start deliveries read by a blocking XREADGROUP or taken over by claim. ARGV 7: worker id,
-- 8: count, then per entry: level, entry id, job id. Returns {dead-lettered count, HGETALL of each
-- started job...}. Cancelled, finished and orphan entries are acked and deleted; entries of jobs
-- already running under another consumer are left alone; entries without a job hash are
-- dead-lettered, and so are jobs delivered more than max_attempts times.
WORKER = ARGV[7]
for i = 0, tonumber(ARGV[8]) - 1 do
  local b = 9 + i * 3
  deliver(ARGV[b], ARGV[b + 1], ARGV[b + 2])
end
return OUT
