-- Record the progress of a running job. ARGV 2: job id, 3: delivery token, 4: progress JSON;
-- KEYS[NK + 1]: the job hash. Returns 1, or 0 when the token is not the current delivery's.
local function run()
  local jk = KEYS[NK + 1]
  if redis.call('HGET', jk, 'token') ~= ARGV[3] then return 0 end
  redis.call('HSET', jk, 'progress', ARGV[4], 'updated_at', NOW_S)
  return 1
end
