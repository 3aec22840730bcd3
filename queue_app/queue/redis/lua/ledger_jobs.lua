-- Read the job hashes of a batch of ledger events: for each job hash KEYS[NK + 1]..., the values
-- of the fields ARGV 2... in that order (false for a field the hash lacks, all false once it
-- expired). One call answers for many jobs, far cheaper for the reader than one HGETALL each.
local function run()
  local out = {}
  for i = NK + 1, #KEYS do
    out[#out + 1] = redis.call('HMGET', KEYS[i], unpack(ARGV, 2))
  end
  return out
end
