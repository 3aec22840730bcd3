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
| `P q:ledger`         | stream | job events (status; job_id, or job_ids: 2-20)  | XDEL'd at ack  |
| `P q:m:<minute>`     | hash   | jobs finished per status in minute (epoch/60)   | 2 hours        |
| `P queues`           | set    | names of declared queues that had a job         | none (bounded) |
| `P workers`          | zset   | live worker ids, score = last heartbeat (ms)    | stale: pruned  |
| `P worker:<id>`      | hash   | id, host, pid, queues, started_at, last_seen    | 3 heartbeats   |
| `P rec:<name>`       | string | JSON record of a RecordStore (webhook:...)      | none           |
| `P rec:<name>`       | list   | JSON log of a RecordStore, newest first         | LTRIM'd        |
| `P lease:<name>`     | string | holder of lease <name> (one scanner at a time)  | lease TTL      |

¹ Deleted as soon as the job completes (its result holds what they recorded).

In cluster mode the job hash is `P {q}:job:<id>` and its checkpoints `P {q}:checkpoints:<id>`
(same slot as its queue); the registry is `P {workers}` and `P {workers}:worker:<id>` (one slot,
so that a registration is one MULTI). Consumer groups
(``consumer_group``, default ``debate-workers``) exist on each stream of a queue.

Keys of the Lua scripts. Each script of queue ``q`` receives in ``KEYS`` first the keys of ``q``
listed for it in ``SCRIPT_KEYS`` (``KEYS[1]`` is always `P q:stream`), then the keys of the jobs
its caller names (job hashes, checkpoints, scope indexes, streams of the priorities it enqueues).
One exception, so that no hot path pays a round trip to read ahead: a key whose name depends on
what the script itself reads may be derived inside it, and only from ``KEYS[1]``'s queue base
(`P q:`, with cluster keys `P {q}:`, hence the same hash tag and slot). These derived keys are:

- `P q:stream:p<n>`: the stream of a priority read from `P q:levels` or from a job hash;
- `P q:m:<minute>`: the counters of the minute of the server's clock (``TIME``);
- `P {q}:job:<id>`: the hash of a job whose id the script read from a stream entry, the delayed
  set or a scope index (take, claim, promote, scoped, enqueue's pruning of a scope index), or of
  the dead letter made for an entry without a job (`entry-<entry id>`). On one server (no
  cluster keys) these are `P job:<id>`: there is no slot to share.

``tests/integration/test_script_keys.py`` records every key each script touches (MONITOR) and
holds the scripts to this.

Nothing grows with traffic history: only declared queues get keys; the promote step deletes the
stream of a priority other than 0 once it is empty (and its level); the claim step removes from
the group the consumers that hold nothing and were idle past ``claim_idle_ms``; ledger events
are deleted once the ledger writer acknowledged them (and the stream is capped near
``ledger_max_len``); index and dead-letter members go once past the retention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis.crc import key_slot

from ..base import JobStatus

#: Fields of a job hash returned by the scripts that start jobs, in this order (the order
#: ``status.job_from_values`` unpacks).
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

    def jobs(self, queue: str, job_ids: Iterable[str], kind: str = "job") -> list[str]:
        """Return ``job`` (or, with ``kind="checkpoints"``, ``checkpoints``) of many jobs."""
        base = self._queue(queue) if self.cluster else self.prefix
        return [f"{base}{kind}:{job_id}" for job_id in job_ids]

    def lease(self, name: str) -> str:
        """Return the key holding the holder of lease ``name``."""
        return f"{self.prefix}lease:{name}"

    def queues(self) -> str:
        """Return the set of queue names."""
        return f"{self.prefix}queues"

    def workers(self) -> str:
        """Return the sorted set of live workers (``P {workers}`` with cluster keys)."""
        return f"{self.prefix}{{workers}}" if self.cluster else f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        """Return the registration hash of a worker (on the slot of ``workers()`` in a cluster)."""
        if self.cluster:
            return f"{self.prefix}{{workers}}:worker:{worker_id}"
        return f"{self.prefix}worker:{worker_id}"

    def record(self, name: str) -> str:
        """Return the key of a ``RecordStore`` record or log (``webhook:endpoint:<id>``, ...)."""
        return f"{self.prefix}rec:{name}"

    def by_slot(self, keys: Iterable[str]) -> list[list[str]]:
        """Group ``keys`` by hash slot with cluster keys (one command may only name one slot)."""
        if not self.cluster:
            return [list(keys)]
        groups: dict[int, list[str]] = {}
        for key in keys:
            groups.setdefault(key_slot(key.encode()), []).append(key)
        return list(groups.values())

    def queue_key(self, queue: str, name: str) -> str:
        """Return the key of ``queue`` named as in ``SCRIPT_KEYS`` (``levels``, ``idx:pending``)."""
        if name == "queues":
            return self.queues()
        if name.startswith("idx:"):
            return self.index(queue, name[4:])
        return self._queue(queue) + name

    def script_keys(self, script: str, queue: str) -> list[str]:
        """Return the keys of ``queue`` that ``script`` receives first (``SCRIPT_KEYS``)."""
        return [
            self.queue_key(queue, name)
            for name in SCRIPT_KEYS[script]
            if not (self.cluster and name in SINGLE_SERVER_KEYS)
        ]

    def script_settings(self, queue: str, ttl: int, group: str, dead_max: int, ledger: int) -> str:
        """Return ARGV[1] of every script: its settings as one string (lua/call.lua reads it)."""
        values = ["1" if self.cluster else "0", queue, ttl, group, dead_max, ledger, self.prefix]
        return SEPARATOR.join(str(value) for value in values)


#: Separator of the fields of ARGV[1] (ASCII unit separator: in no name or number).
SEPARATOR = "\x1f"

_ALL_INDEXES = tuple(f"idx:{status.value}" for status in JobStatus)
_QUEUE_CORE = ("stream", "levels", "delayed", "dead", "ledger")
#: Keys of its queue each script receives first, in this order; per-job keys follow them. The
#: first, the queue's priority-0 stream, gives the slot every other key of the queue hashes to.
SCRIPT_KEYS: dict[str, tuple[str, ...]] = {
    "enqueue": ("stream", "levels", "delayed", "ledger", "idx:pending", "idx:retrying", "queues"),
    "take": _QUEUE_CORE + _ALL_INDEXES,
    "start": ("stream", "dead", "ledger", "idx:pending", "idx:processing", "idx:failed"),
    "finish": _QUEUE_CORE + _ALL_INDEXES,
    "promote": _QUEUE_CORE + _ALL_INDEXES,
    "cancel": ("stream", "delayed", "ledger", *_ALL_INDEXES),
    "claim": ("stream", "levels", "idx:pending", "idx:processing"),
    "heartbeat": ("stream",),
    "revive": ("stream", "levels", "dead", "ledger", "idx:failed", "idx:cancelled", "idx:pending"),
    "progress": ("stream",),
    "checkpoint": ("stream",),
    "scoped": ("stream",),
    "ledger_jobs": ("stream",),
}
#: Global keys a script touches only outside cluster mode (another slot): last in their layout.
SINGLE_SERVER_KEYS = frozenset({"queues"})


def lua_key_function(script: str) -> str:
    """Return the Lua ``key_<script>(name)``: the key ``name`` of ``SCRIPT_KEYS[script]``.

    A chain of tests, not a table: building a table of the keys costs Redis more per call.
    """
    layout = SCRIPT_KEYS[script]
    shared = [name for name in layout if name not in SINGLE_SERVER_KEYS]
    single = [name for name in layout if name in SINGLE_SERVER_KEYS]
    tests = [f"name == '{name}' then return KEYS[{i}]" for i, name in enumerate(shared, start=1)]
    tests += [
        f"name == '{name}' and not CLUSTER then return KEYS[{i}]"
        for i, name in enumerate(single, start=len(shared) + 1)
    ]
    chain = "\n  elseif ".join(tests)
    return f"local function key_{script}(name)\n  if {chain}\n  end\n  {_UNDECLARED}\nend\n"


def lua_key_counts(script: str) -> tuple[int, int]:
    """Return how many of ``script``'s queue keys it receives always, and only on one server.

    Per-job keys start after them: ``KEYS[NK + 1]``, NK their sum outside cluster mode.
    """
    layout = SCRIPT_KEYS[script]
    single = sum(name in SINGLE_SERVER_KEYS for name in layout)
    return len(layout) - single, single


_UNDECLARED = "return error('key not declared by the caller: ' .. name)"

#: Positions (Lua, from 1) in ``job_values``'s reply of the fields the start scripts read or set.
_STARTED = ("status", "attempts", "max_attempts", "started_at", "worker_id", "token")

#: ``job_values(jk)`` and the positions in its reply, for the library's head (scripts.py).
LUA_JOB_FIELDS = (
    "-- JOB_FIELDS (keys.py) then the entry of the job's delivery, in one HMGET.\n"
    "local function job_values(jk)\n  return redis.call('HMGET', jk, "
    + ", ".join(f"'{name}'" for name in (*JOB_FIELDS, "entry"))
    + ")\nend\n"
    + "local "
    + ", ".join(f"J_{name.upper()}" for name in (*_STARTED, "entry"))
    + " = "
    + ", ".join(str(JOB_FIELDS.index(name) + 1) for name in _STARTED)
    + f", {len(JOB_FIELDS) + 1}\n"
)
