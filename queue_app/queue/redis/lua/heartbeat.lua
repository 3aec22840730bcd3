-- Reset the idle time of running deliveries of consumer ARGV 2. ARGV 3: count, then per job:
-- id, token; KEYS[NK + i]: the hash of job i. Derived (keys.py): the stream each job hash names.
-- Returns the ids whose token is no longer current (cancelled or taken over); a delivery whose
-- outcome was written under its token (done_token) is finished, not lost.
local function run()
  local consumer = ARGV[2]
  local lost = {}
  for i = 0, tonumber(ARGV[3]) - 1 do
    local id, token = ARGV[4 + i * 2], ARGV[5 + i * 2]
    local h = redis.call('HMGET', KEYS[NK + 1 + i], 'token', 'stream', 'entry', 'done_token')
    if h[1] == token then
      redis.call('XCLAIM', stream_key(h[2]), GROUP, consumer, '0', h[3], 'JUSTID')
    elseif h[4] ~= token then
      lost[#lost + 1] = id
    end
  end
  return lost
end
