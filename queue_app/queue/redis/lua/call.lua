-- The state of one call, shared by the library's helpers (lib.lua) and the scripts' bodies as
-- upvalues: begin() sets all of it at the start of every call (Redis runs one call at a time),
-- so nothing carries over from one call to the next but the caches of the parsed settings.
-- KEYS and ARGV are the call's keys and arguments (a function gets them as its arguments).
local KEYS, ARGV
-- ARGV[1]: cluster flag, queue, job TTL (s), consumer group, dead-letter cap, ledger cap,
-- prefix (keys.script_settings); kept as strings: Redis takes them as arguments as they are (it
-- formats Lua numbers). Parsed again only when it changes (another queue).
local SETTINGS, CLUSTER_FLAG, Q, TTL, GROUP, DEAD_MAX, LEDGER_MAX, PREFIX
local CLUSTER
-- key(name): the queue's key `name` in KEYS (keys.lua_key_function of the running script); NK:
-- how many such keys come first, per-job keys start at KEYS[NK + 1].
local key, NK
-- Derived keys (see keys.py): names that depend on what the script reads, built from the queue
-- base of KEYS[1] ('P q:' or 'P {q}:'), so with cluster keys they share its hash tag and slot.
local STREAM0, QBASE, JOB_BASE
-- The server's clock, read at the start of the scripts that use it: now in ms and in s with 6
-- decimals, as strings (Lua turns them into numbers in arithmetic).
local NOW_MS, NOW_S
-- A finish call of several jobs defers index moves, acks and minute counts to its end, one
-- command per key for all its jobs (finish.lua); nil: every write at once.
local DEFER
-- Delivery: scripts that start jobs set WORKER; OUT = {dead-lettered count, started jobs...}.
local WORKER, OUT

local function read_clock()
  local time = redis.call('TIME')
  local usec = string.rep('0', 6 - #time[2]) .. time[2]
  NOW_MS = time[1] .. string.sub(usec, 1, 3)
  NOW_S = time[1] .. '.' .. usec
end

-- Set the state of a call of the script whose key function is `key_of`, which receives `always`
-- queue keys, and `single` more outside cluster mode; `clock`: the script reads the clock.
local function begin(keys, args, key_of, always, single, clock)
  KEYS, ARGV = keys, args
  if args[1] ~= SETTINGS then
    CLUSTER_FLAG, Q, TTL, GROUP, DEAD_MAX, LEDGER_MAX, PREFIX = string.match(args[1],
      '([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)')
    CLUSTER = CLUSTER_FLAG == '1'
    SETTINGS = args[1]
  end
  if keys[1] ~= STREAM0 then
    QBASE = string.sub(keys[1], 1, -7)
    STREAM0 = keys[1]
  end
  JOB_BASE = CLUSTER and QBASE or PREFIX
  key, NK = key_of, CLUSTER and always or always + single
  if clock then read_clock() end
  DEFER, WORKER, OUT = nil, '', {0}
end

local function index_key(status) return key('idx:' .. status) end
local function stream_key(level)
  if tonumber(level) == 0 then return KEYS[1] end
  return QBASE .. 'stream:p' .. level
end
local function minute_key(minute) return QBASE .. 'm:' .. minute end
local function job_key(id) return JOB_BASE .. 'job:' .. id end
local function level_of(priority)
  return string.format('%d', tonumber(priority) or 0)
end
-- Priorities in use, highest first.
local function levels_desc()
  return redis.call('ZREVRANGEBYSCORE', key('levels'), '+inf', '-inf')
end
