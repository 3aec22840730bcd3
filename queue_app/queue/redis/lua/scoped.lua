-- Walk the scope indexes of queue Q, newest enqueue first, each id once, and return
-- {matches, exhausted}: matches = up to ARGV 3 pairs {id, enqueue ms} of jobs that exist and, when
-- ARGV 2 is not '', are in that status; exhausted = 1 when every index was walked to its end (so
-- the matches are all there are), 0 when the walk stopped early (enough matches, or ARGV 4
-- entries walked). Ids of jobs gone from Redis are removed on the way.
-- KEYS[NK + 1]: the index of status ARGV 2 when one is given; the scope indexes follow.
-- Derived (keys.py): the job hashes of the ids read from the scope indexes.
local function run()
  local STATUS, WANT, BUDGET = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local CHUNK = 200
  local STATUS_INDEX = STATUS ~= '' and KEYS[NK + 1] or nil

  local cursors = {}
  for i = NK + (STATUS_INDEX and 2 or 1), #KEYS do
    cursors[#cursors + 1] = {key = KEYS[i], pos = 0, buf = {}, at = 1}
  end

  -- The next (id, score) of a cursor, read by chunks of CHUNK; nil at its end.
  local function peek(c)
    if c.at > #c.buf and not c.done then
      c.buf = redis.call('ZREVRANGE', c.key, c.pos, c.pos + CHUNK - 1, 'WITHSCORES')
      c.pos, c.at = c.pos + CHUNK, 1
      c.done = #c.buf < 2 * CHUNK
    end
    if c.at > #c.buf then return nil end
    return c.buf[c.at], tonumber(c.buf[c.at + 1])
  end

  local function newest()
    local best, best_score
    for _, c in ipairs(cursors) do
      local id, score = peek(c)
      if id and (best == nil or score > best_score) then best, best_score = c, score end
    end
    return best
  end

  local function wanted(c, id)
    if STATUS_INDEX and redis.call('ZSCORE', STATUS_INDEX, id) ~= false then return true end
    if redis.call('EXISTS', job_key(id)) == 1 then return STATUS == '' end
    redis.call('ZREM', c.key, id)
    c.pos = c.pos - 1 -- the entries after it moved up one rank
    return false
  end

  local out, seen, walked = {}, {}, 0
  local c = newest()
  while c and #out < 2 * WANT and walked < BUDGET do
    local id, score = c.buf[c.at], c.buf[c.at + 1]
    c.at = c.at + 2
    walked = walked + 1
    if not seen[id] then
      seen[id] = true
      if wanted(c, id) then
        out[#out + 1] = id
        out[#out + 1] = score
      end
    end
    c = newest()
  end
  return {out, c and 0 or 1}
end
