-- Record one checkpoint of a running job and, optionally, its progress. ARGV 8: job id,
-- 9: delivery token, 10: checkpoint key, 11: value JSON, 12: progress JSON ('' to leave it).
-- Returns 1, or 0 when the token is not the current delivery's.
local id = ARGV[8]
local jk = job_key(Q, id)
if redis.call('HGET', jk, 'token') ~= ARGV[9] then return 0 end
local ck = checkpoints_key(Q, id)
redis.call('HSET', ck, ARGV[10], ARGV[11])
redis.call('EXPIRE', ck, TTL)
if ARGV[12] ~= '' then redis.call('HSET', jk, 'progress', ARGV[12], 'updated_at', NOW_S) end
return 1
