"""Redis key schema of the queue: every key, its type and its TTL.

``P`` is the key prefix (``ARAGORA_QUEUE_PREFIX``, default ``aragora:queue:``), ``q`` a queue
name. With ``cluster_keys`` on, ``q`` is written ``{q}`` so that all keys of a queue hash to one
slot and every script of that queue runs on one shard.

| key                  | type   | holds                                           | TTL            |
|----------------------|--------|-------------------------------------------------|----------------|
| `P q:stream`         | stream | deliveries of priority 0 jobs (field `job_id`)  | entries XDEL'd |
| `P q:stream:p<n>`    | stream | deliveries of priority n jobs (n != 0)          | DEL'd if empty |
| `P q:levels`         | zset   | priorities with a stream; read highest first    | empty ones out |
| `P q:delayed`        | zset   | delayed/retrying job ids, score = due time (ms) | promoted       |
| `P q:idx:<st>`       | zset   | ids in status <st>, score = last change (ms)    | terminal: TTL  |
| `P q:dead`           | zset   | dead-lettered ids, score = time (ms), bounded   | pruned at TTL  |
| `P q:by:<tag>`       | zset   | ids of jobs enqueued with scope tag <tag>       | 2 x TTL after  |
|                      |        | (owner:<id>, organization:<name>), score = ms   | last enqueue   |
| `P job:<id>`         | hash   | status, payload, result, error, delivery tokens | TTL once final |
| `P checkpoints:<id>` | hash   | items a running job finished (batch results)    | max_job_ttl¹   |
| `P q:ledger`         | stream | job events for the database ledger (id, status) | XDEL'd at ack  |
| `P q:m:<minute>`     | hash   | jobs finished per status in minute (epoch/60)   | 2 hours        |
| `P queues`           | set    | names of declared queues that had a job         | none (bounded) |
| `P workers`          | zset   | live worker ids, score = last heartbeat (ms)    | stale: pruned  |
| `P worker:<id>`      | hash   | id, host, pid, queues, started_at, last_seen    | 3 heartbeats   |
| `P rec:<name>`       | string | JSON record of a RecordStore (webhook:...)      | none           |
| `P rec:<name>`       | list   | JSON log of a RecordStore, newest first         | LTRIM'd        |
| `P lease:<name>`     | string | holder of lease <name> (one scanner at a time)  | lease TTL      |

¹ Deleted as soon as the job completes (its result holds what they recorded).

In cluster mode the job hash is `P {q}:job:<id>` and its checkpoints `P {q}:checkpoints:<id>`
(same slot as its queue). Consumer groups
(``consumer_group``, default ``debate-workers``) exist on each stream of a queue.

Nothing grows with traffic history: only declared queues get keys; the promote step deletes the
stream of a priority other than 0 once it is empty (and its level); the claim step removes from
the group the consumers that hold nothing and were idle past ``claim_idle_ms``; ledger events
are deleted once the ledger writer acknowledged them (and the stream is capped near
``ledger_max_len``); index and dead-letter members go once past the retention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Fields of a job hash returned by the scripts that start jobs, in this order.
JOB_FIELDS = (
    "id",
    "queue",
    "status",
    "payload",
    "metadata",
    "priority",
    "attempts",
    "max_attempts",
    "created_at",
    "started_at",
    "completed_at",
    "error",
    "worker_id",
    "result",
    "progress",
    "stream",
    "token",
)

#: Priorities accepted by enqueue (each priority in use has its own stream).
PRIORITY_RANGE = (-1000, 1000)


@dataclass(frozen=True, slots=True)
class Keys:
    """Build the Redis keys of one key prefix."""

    prefix: str = "aragora:queue:"
    cluster: bool = False

    def _queue(self, queue: str) -> str:
        return f"{self.prefix}{{{queue}}}:" if self.cluster else f"{self.prefix}{queue}:"

    def stream(self, queue: str, priority: int | str = 0) -> str:
        """Return the stream of ``queue``'s jobs of ``priority`` (``P q:stream`` for 0)."""
        level = int(priority)
        return self._queue(queue) + ("stream" if level == 0 else f"stream:p{level}")

    def streams(self, queue: str, levels: Iterable[int | str]) -> list[str]:
        """Return the streams of ``levels`` (priorities in use, read from ``levels()``)."""
        return [self.stream(queue, level) for level in levels]

    def levels(self, queue: str) -> str:
        """Return the sorted set of priorities that have a stream (member = score = priority)."""
        return self._queue(queue) + "levels"

    def delayed(self, queue: str) -> str:
        """Return the sorted set of delayed/retrying job ids."""
        return self._queue(queue) + "delayed"

    def index(self, queue: str, status: str) -> str:
        """Return the sorted set of job ids in ``status``."""
        return self._queue(queue) + "idx:" + status

    def scope(self, queue: str, tag: str) -> str:
        """Return the sorted set of ids of jobs enqueued with scope ``tag`` (see ``scope_tags``)."""
        return self._queue(queue) + "by:" + tag

    def dead(self, queue: str) -> str:
        """Return the sorted set of dead-lettered job ids."""
        return self._queue(queue) + "dead"

    def ledger(self, queue: str) -> str:
        """Return the stream of job events that feeds the database ledger."""
        return self._queue(queue) + "ledger"

    def minute(self, queue: str, minute: int) -> str:
        """Return the hash counting jobs finished per status in ``minute`` (Unix time // 60)."""
        return self._queue(queue) + f"m:{minute}"

    def job(self, job_id: str, queue: str = "") -> str:
        """Return the status hash of a job (``queue`` matters only in cluster mode)."""
        if self.cluster:
            return self._queue(queue) + "job:" + job_id
        return f"{self.prefix}job:{job_id}"

    def checkpoints(self, job_id: str, queue: str = "") -> str:
        """Return the hash of a job's checkpoints (``queue`` matters only in cluster mode)."""
        if self.cluster:
            return self._queue(queue) + "checkpoints:" + job_id
        return f"{self.prefix}checkpoints:{job_id}"

    def lease(self, name: str) -> str:
        """Return the key holding the holder of lease ``name``."""
        return f"{self.prefix}lease:{name}"

    def queues(self) -> str:
        """Return the set of queue names."""
        return f"{self.prefix}queues"

    def workers(self) -> str:
        """Return the sorted set of live workers."""
        return f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        """Return the registration hash of a worker."""
        return f"{self.prefix}worker:{worker_id}"

    def record(self, name: str) -> str:
        """Return the key of a ``RecordStore`` record or log (``webhook:endpoint:<id>``, ...)."""
        return f"{self.prefix}rec:{name}"

    def lua_args(self) -> list[str]:
        """Return the two leading ARGV values every script reads its key schema from."""
        return [self.prefix, "1" if self.cluster else "0"]


#: Lua twin of ``Keys``: every script starts with it and reads ARGV[1] (prefix), ARGV[2] (cluster).
LUA_PRELUDE = (
    "local JOB_FIELDS = {"
    + ", ".join(f"'{name}'" for name in JOB_FIELDS)
    + "}\n"
    + """
local PREFIX = ARGV[1]
local CLUSTER = ARGV[2] == '1'
local function qbase(q)
  if CLUSTER then return PREFIX .. '{' .. q .. '}:' end
  return PREFIX .. q .. ':'
end
local function stream_key(q, level)
  if tonumber(level) == 0 then return qbase(q) .. 'stream' end
  return qbase(q) .. 'stream:p' .. level
end
local function levels_key(q) return qbase(q) .. 'levels' end
local function delayed_key(q) return qbase(q) .. 'delayed' end
local function index_key(q, status) return qbase(q) .. 'idx:' .. status end
local function dead_key(q) return qbase(q) .. 'dead' end
local function scope_key(q, tag) return qbase(q) .. 'by:' .. tag end
local function ledger_key(q) return qbase(q) .. 'ledger' end
local function minute_key(q, minute) return qbase(q) .. 'm:' .. minute end
local function job_key(q, id)
  if CLUSTER then return qbase(q) .. 'job:' .. id end
  return PREFIX .. 'job:' .. id
end
local function checkpoints_key(q, id)
  if CLUSTER then return qbase(q) .. 'checkpoints:' .. id end
  return PREFIX .. 'checkpoints:' .. id
end
local function level_of(priority)
  return string.format('%d', tonumber(priority) or 0)
end
-- Priorities in use, highest first.
local function levels_desc(q)
  return redis.call('ZREVRANGEBYSCORE', levels_key(q), '+inf', '-inf')
end
"""
)
