-- Reset the idle time of running deliveries of consumer ARGV 8. ARGV 9: count, then per job:
-- id, token. Returns the ids whose token is no longer current (cancelled or taken over); a
-- delivery whose outcome was written under its token (done_token) is finished, not lost.
local consumer = ARGV[8]
local lost = {}
for i = 0, tonumber(ARGV[9]) - 1 do
  local id, token = ARGV[10 + i * 2], ARGV[11 + i * 2]
  local h = redis.call('HMGET', job_key(Q, id), 'token', 'stream', 'entry', 'done_token')
  if h[1] == token then
    redis.call('XCLAIM', stream_key(Q, h[2]), GROUP, consumer, 0, h[3], 'JUSTID')
  elseif h[4] ~= token then
    lost[#lost + 1] = id
  end
end
return lost
