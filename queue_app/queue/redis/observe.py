"""Read-only views of queue state for metrics and health checks, in a fixed number of round trips.

``read_snapshot`` costs at most five round trips whatever the number of jobs: the queue names,
one pipeline of counters for every queue, one pipeline reading the oldest undelivered entry of
each stream, and the worker registry (two, three when it forgets expired workers).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..base import JobStatus
from ..config import QueueConfig
from ..errors import QueueConnectionError
from .connect import client_from_url
from .keys import Keys
from .outage import translate_errors
from .registry import WorkerRegistry
from .status import JobStatusTracker, text

#: Seconds a metrics scrape or readiness probe waits for Redis.
SOCKET_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueState:
    """Counters of one queue at one moment."""

    queue: str
    #: Stream entries not yet delivered to any worker: jobs ready and waiting.
    depth: int
    #: Deliveries read by a worker and not yet acknowledged (running or about to).
    in_flight: int
    #: Delayed and retrying jobs waiting for their due time.
    delayed: int
    #: Jobs kept in the dead-letter set.
    dead_letters: int
    #: Exact number of jobs in each status.
    counts: dict[str, int] = field(default_factory=dict)
    #: Seconds since the oldest undelivered entry entered its stream (0 when none waits).
    oldest_pending_age: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """State of every queue plus the live workers, as read by ``read_snapshot``."""

    queues: list[QueueState]
    #: Registration records of live workers (``WorkerRegistry.list_workers``).
    workers: list[dict[str, Any]]


@contextlib.asynccontextmanager
async def connect(config: QueueConfig) -> AsyncIterator[aioredis.Redis]:
    """Open a short-lived client with tight timeouts (probes and scrapes must not hang)."""
    client = client_from_url(
        config.redis_url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def ping(client: Any) -> None:
    """Raise ``QueueConnectionError`` unless Redis answers PING (a refused login counts too)."""
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        raise QueueConnectionError(f"Redis unreachable: {type(error).__name__}") from error


@translate_errors
async def read_snapshot(client: Any, config: QueueConfig) -> Snapshot:
    """Read the state of every known queue and the live workers."""
    keys = Keys(config.key_prefix, config.cluster_keys)
    queues = await JobStatusTracker(client, config).queue_names()
    streams_by_queue = await streams_of(client, keys, queues)
    statuses = [status.value for status in JobStatus]
    async with client.pipeline(transaction=False) as pipe:
        pipe.time()
        for queue in queues:
            for stream in streams_by_queue[queue]:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
            pipe.zcard(keys.delayed(queue))
            pipe.zcard(keys.dead(queue))
            for status in statuses:
                pipe.zcard(keys.index(queue, status))
        replies = await pipe.execute(raise_on_error=False)
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    rows, offset = [], 1
    for queue in queues:
        size = 2 * len(streams_by_queue[queue]) + 2 + len(statuses)
        rows.append(replies[offset : offset + size])
        offset += size
    streams = [
        _stream_state(streams_by_queue[queue], row, config.consumer_group)
        for queue, row in zip(queues, rows, strict=True)
    ]
    oldest = await _oldest_undelivered(client, [s for state in streams for s in state])
    states = []
    for queue, row, stream_states in zip(queues, rows, streams, strict=True):
        entry_ms = [oldest[s.key] for s in stream_states if s.key in oldest]
        rest = row[2 * len(stream_states) :]
        states.append(
            QueueState(
                queue=queue,
                depth=sum(s.length - s.pending for s in stream_states),
                in_flight=sum(s.pending for s in stream_states),
                delayed=_int(rest[0]),
                dead_letters=_int(rest[1]),
                counts={status: _int(n) for status, n in zip(statuses, rest[2:], strict=True)},
                oldest_pending_age=max(0, now_ms - min(entry_ms)) / 1000 if entry_ms else 0.0,
            )
        )
    workers = await WorkerRegistry(client, config).list_workers()
    return Snapshot(queues=states, workers=workers)


@dataclass(frozen=True, slots=True)
class _Stream:
    key: str
    length: int
    pending: int
    #: Last entry delivered to the group ("0-0": none yet).
    last_delivered: str


def _stream_state(streams: list[str], row: list[Any], group: str) -> list[_Stream]:
    """Turn the XLEN/XINFO GROUPS replies of a queue's streams into ``_Stream`` records."""
    found = []
    for index, stream in enumerate(streams):
        length, groups = _int(row[2 * index]), row[2 * index + 1]
        info = _group_info(groups, group)
        pending = int(info.get("pending") or 0)
        last = text(info.get("last-delivered-id") or "0-0")
        found.append(_Stream(stream, length, min(pending, length), last))
    return found


async def streams_of(client: Any, keys: Keys, queues: list[str]) -> dict[str, list[str]]:
    """Return each queue's streams: one per priority in use (the priority-0 one at least)."""
    async with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrevrangebyscore(keys.levels(queue), "+inf", "-inf")
        replies = await pipe.execute()
    return {
        queue: keys.streams(queue, [text(level) for level in levels] or ["0"])
        for queue, levels in zip(queues, replies, strict=True)
    }


def _group_info(groups: Any, group: str) -> dict[str, Any]:
    if isinstance(groups, Exception) or not groups:  # no stream or no group yet
        return {}
    for info in groups:
        if text(info.get("name", "")) == group:
            return dict(info)
    return {}


async def _oldest_undelivered(client: Any, streams: list[_Stream]) -> dict[str, int]:
    """Return the time (ms) of the first entry after each stream's last delivered one."""
    waiting = [s for s in streams if s.length > s.pending]
    if not waiting:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for stream in waiting:
            pipe.xrange(stream.key, min="(" + stream.last_delivered, max="+", count=1)
        replies = await pipe.execute(raise_on_error=False)
    oldest = {}
    for stream, reply in zip(waiting, replies, strict=True):
        if reply and not isinstance(reply, Exception):
            entry_id = text(reply[0][0])
            oldest[stream.key] = int(entry_id.split("-", 1)[0])
    return oldest


def _int(reply: Any) -> int:
    return 0 if isinstance(reply, Exception) or reply is None else int(reply)
