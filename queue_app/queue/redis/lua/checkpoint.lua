-- Record one checkpoint of a running job and, optionally, its progress. ARGV 2: job id,
-- 3: delivery token, 4: checkpoint key, 5: value JSON, 6: progress JSON ('' to leave it).
-- KEYS[NK + 1]: the job hash, KEYS[NK + 2]: its checkpoints.
-- Returns 1, or 0 when the token is not the current delivery's.
local function run()
  local jk, ck = KEYS[NK + 1], KEYS[NK + 2]
  if redis.call('HGET', jk, 'token') ~= ARGV[3] then return 0 end
  redis.call('HSET', ck, ARGV[4], ARGV[5])
  redis.call('EXPIRE', ck, TTL)
  if ARGV[6] ~= '' then redis.call('HSET', jk, 'progress', ARGV[6], 'updated_at', NOW_S) end
  return 1
end
