-- Record the progress of a running job. ARGV 8: job id, 9: delivery token, 10: progress JSON.
-- Returns 1, or 0 when the token is not the current delivery's.
local jk = job_key(Q, ARGV[8])
if redis.call('HGET', jk, 'token') ~= ARGV[9] then return 0 end
redis.call('HSET', jk, 'progress', ARGV[10], 'updated_at', NOW_S)
return 1
