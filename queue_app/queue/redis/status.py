"""JobStatusTracker: read job status hashes, exact per-status counts and status indexes."""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..base import Job, JobStatus
from ..config import QueueConfig, get_queue_config
from .keys import JOB_FIELDS, Keys
from .outage import translate_errors
from .scripts import SCRIPTS, load, lost

#: Most scope index entries one scoped listing walks per queue.
SCOPED_WALK_LIMIT = 5000

#: Outcomes counted per minute (``P q:m:<minute>``).
FINISHED = ("completed", "failed", "cancelled", "retrying")


def text(value: Any) -> str:
    """Return ``value`` as str whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs_to_dict(flat: Iterable[Any]) -> dict[str, str]:
    """Turn a flat ``[field, value, ...]`` reply into a dict of str."""
    items = [text(item) for item in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


_decode = json.JSONDecoder().decode


def _json(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return _decode(raw)
    except ValueError:
        return raw


def job_from_hash(data: Mapping[str, str | None]) -> Job:
    """Build a ``Job`` from the fields of its status hash (a missing field: None or absent)."""
    return job_from_values([data.get(name) for name in JOB_FIELDS])


def job_from_values(values: Sequence[Any]) -> Job:
    """Build a ``Job`` from the values of ``JOB_FIELDS`` in order (bytes or str; None: missing).

    The start scripts reply with these values for every job they start: positional, and no
    dict in between, since the worker builds one per job.

    Raises:
        KeyError: the values have no ``id`` (not a job hash).
    """
    (
        job_id,
        queue,
        status,
        payload,
        metadata,
        priority,
        attempts,
        max_attempts,
        created_at,
        started_at,
        completed_at,
        error,
        worker_id,
        result,
        progress,
        _stream,
        _token,
    ) = [value.decode() if isinstance(value, bytes) else value for value in values]
    if job_id is None:
        raise KeyError("id")
    decoded = _json(payload, {})
    return Job(
        payload=decoded if isinstance(decoded, dict) else {"raw": decoded},
        id=job_id,
        status=JobStatus(status or "pending"),
        created_at=float(created_at or 0),
        started_at=_float(started_at),
        completed_at=_float(completed_at),
        attempts=int(attempts or 0),
        max_attempts=int(max_attempts or 0),
        error=error or None,
        worker_id=worker_id or None,
        priority=int(priority or 0),
        metadata=_json(metadata, {}),
        result=_json(result, None),
        queue=queue or None,
        progress=_json(progress, None),
    )


def _float(raw: str | None) -> float | None:
    return float(raw) if raw else None


@dataclass(frozen=True, slots=True)
class ScopedPage:
    """A page of a scoped listing; ``count`` is None unless every index was walked."""

    jobs: list[Job]
    count: int | None
    has_more: bool


class JobStatusTracker:
    """Read job status from Redis: single jobs, counts by status, newest jobs per status."""

    def __init__(self, redis_client: Redis, config: QueueConfig | None = None) -> None:
        self._redis = redis_client
        self.config = config or get_queue_config()
        self.keys = Keys(self.config.key_prefix, self.config.cluster_keys)

    @translate_errors
    async def queue_names(self) -> list[str]:
        """Return the names of every queue that ever had a job (the default one at least)."""
        names = {text(name) for name in await self._redis.smembers(self.keys.queues())}
        return sorted(names | {self.config.default_queue})

    @translate_errors
    async def get_job(self, job_id: str) -> Job | None:
        """Return the job with ``job_id``, or None when unknown or expired.

        With cluster keys a job hash is on its queue's slot: one pipelined pass reads it in
        every declared queue (each shard answers for its queues) and the names in ``P queues``;
        only a job of a queue no longer declared costs a second pass.
        """
        if not self.keys.cluster:
            data = await self._redis.hgetall(self.keys.job(job_id))
            return job_from_hash(pairs_to_dict(_flatten(data))) if data else None
        declared = sorted(self.config.queues or {self.config.default_queue})
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(self.keys.queues())
            for queue in declared:
                pipe.hgetall(self.keys.job(job_id, queue))
            names, *found = await pipe.execute()
        others = sorted({text(name) for name in names} - set(declared))
        if others and not any(found):
            async with self._redis.pipeline(transaction=False) as pipe:
                for queue in others:
                    pipe.hgetall(self.keys.job(job_id, queue))
                found = await pipe.execute()
        for data in found:
            if data:
                return job_from_hash(pairs_to_dict(_flatten(data)))
        return None

    @translate_errors
    async def get_counts_by_status(self, queue_name: str | None = None) -> dict[str, int]:
        """Return the exact number of jobs in each status (O(1) per queue)."""
        queues = [queue_name] if queue_name else await self.queue_names()
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                for status in JobStatus:
                    pipe.zcard(self.keys.index(queue, status.value))
            replies = await pipe.execute()
        counts = dict.fromkeys((status.value for status in JobStatus), 0)
        names = [status.value for status in JobStatus] * len(queues)
        for name, count in zip(names, replies, strict=True):
            counts[name] += int(count)
        return counts

    @translate_errors
    async def list_jobs(
        self,
        status: JobStatus | str | None = None,
        queue_name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Return jobs newest first (by last transition), optionally of one status and queue."""
        if limit <= 0:
            return []
        statuses = [JobStatus(status).value] if status else [s.value for s in JobStatus]
        queues = [queue_name] if queue_name else await self.queue_names()
        keys = [self.keys.index(q, s) for q in queues for s in statuses]
        newest = await self._newest(keys, offset + limit)
        chosen = newest[offset : offset + limit]
        return await self._load(chosen)

    @translate_errors
    async def list_scoped(
        self,
        tags: Sequence[str],
        status: JobStatus | str | None = None,
        queue_name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ScopedPage:
        """Return jobs enqueued with any of ``tags`` (``scope_tags``), newest enqueued first.

        One script per queue (pipelined) walks the scope indexes, at most
        ``SCOPED_WALK_LIMIT`` entries each, then one pipeline loads the page: the cost follows
        ``offset + limit``, not how many jobs other scopes have.
        """
        queues = [queue_name] if queue_name else await self.queue_names()
        state = JobStatus(status).value if status else ""
        want = offset + limit + 1
        replies = await self._scoped(queues, state, [state, want, SCOPED_WALK_LIMIT], tags)
        found = heapq.merge(
            *(
                [(-float(score), text(job_id), queue) for job_id, score in _pairs(matches)]
                for queue, (matches, _) in zip(queues, replies, strict=True)
            )
        )
        ranked = [(job_id, queue) for _, job_id, queue in found]
        jobs = await self._load(ranked[offset : offset + limit])
        exhausted = all(int(done) for _, done in replies)
        return ScopedPage(jobs, len(ranked) if exhausted else None, len(ranked) > offset + limit)

    async def _scoped(
        self, queues: list[str], state: str, args: list[Any], tags: Sequence[str]
    ) -> list[Any]:
        replies = await self._run_scoped(queues, state, args, tags)
        if any(lost(reply) for reply in replies):
            await load(self._redis)
            replies = await self._run_scoped(queues, state, args, tags)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _run_scoped(
        self, queues: list[str], state: str, args: list[Any], tags: Sequence[str]
    ) -> list[Any]:
        calls = []
        for queue in queues:
            keys = self.keys.script_keys("scoped", queue)
            keys += [self.keys.index(queue, state)] if state else []
            keys += [self.keys.scope(queue, tag) for tag in tags]
            settings = self.keys.script_settings(queue, self.config.job_ttl_seconds, "", 0, 0)
            calls.append((keys, [settings, *args]))
        return await SCRIPTS["scoped"].run_many(self._redis, calls)

    @translate_errors
    async def list_dead_letters(self, queue_name: str | None = None, limit: int = 50) -> list[Job]:
        """Return dead-lettered jobs, newest first."""
        queues = [queue_name] if queue_name else await self.queue_names()
        newest = await self._newest([self.keys.dead(q) for q in queues], limit)
        return await self._load(newest)

    async def due_times(self, jobs: Sequence[tuple[str, str]]) -> dict[str, float]:
        """Return when each delayed or retrying job of ``(job id, queue)`` pairs is due (Unix s).

        Jobs that wait for no due time (in a stream, running, finished) are left out.
        """
        if not jobs:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, queue in jobs:
                pipe.zscore(self.keys.delayed(queue), job_id)
            replies = await pipe.execute()
        return {
            job_id: float(score) / 1000
            for (job_id, _), score in zip(jobs, replies, strict=True)
            if score is not None
        }

    async def delayed_ids(self, queue_names: Sequence[str], limit: int) -> list[str]:
        """Return the ids of up to ``limit`` delayed or retrying jobs per queue, soonest first."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queue_names:
                pipe.zrange(self.keys.delayed(queue), 0, limit - 1)
            replies = await pipe.execute()
        return [text(job_id) for reply in replies for job_id in reply]

    @translate_errors
    async def throughput(self, queue_name: str, minutes: int = 60) -> list[dict[str, int]]:
        """Return per-minute counts of finished jobs, oldest first: ``minute`` (Unix time // 60),
        ``completed``, ``failed``, ``cancelled``, ``retrying``."""
        return (await self.throughputs([queue_name], minutes))[queue_name]

    async def throughputs(
        self, queue_names: list[str], minutes: int = 60
    ) -> dict[str, list[dict[str, int]]]:
        """Return ``throughput`` of every queue named, in one pipelined round trip."""
        current = int(time.time() // 60)
        wanted = list(range(current - minutes + 1, current + 1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queue_names:
                for minute in wanted:
                    pipe.hgetall(self.keys.minute(queue, minute))
            replies = await pipe.execute()
        found: dict[str, list[dict[str, int]]] = {}
        for index, queue in enumerate(queue_names):
            rows = found.setdefault(queue, [])
            for offset, minute in enumerate(wanted):
                counts = {text(k): int(v) for k, v in replies[index * len(wanted) + offset].items()}
                row = {"minute": minute}
                row.update({s: counts.get(s, 0) for s in FINISHED})
                rows.append(row)
        return found

    async def _newest(self, index_keys: list[str], count: int) -> list[tuple[str, str]]:
        """Return ``(job id, queue)`` of the ``count`` highest scores of ``index_keys``."""
        key_queue = {key: self._queue_of(key) for key in index_keys}
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in index_keys:
                pipe.zrevrange(key, 0, count - 1, withscores=True)
            replies = await pipe.execute()
        ranked = (
            [(-float(score), text(member), key_queue[key]) for member, score in reply]
            for key, reply in zip(index_keys, replies, strict=True)
        )
        merged = heapq.merge(*ranked)
        return [(member, key) for _, member, key in list(merged)[:count]]

    async def _load(self, chosen: list[tuple[str, str]]) -> list[Job]:
        if not chosen:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, queue in chosen:
                pipe.hgetall(self.keys.job(job_id, queue))
            replies = await pipe.execute()
        return [job_from_hash(pairs_to_dict(_flatten(data))) for data in replies if data]

    def _queue_of(self, index_key: str) -> str:
        rest = index_key[len(self.keys.prefix) :]
        name = rest.split(":", 1)[0]
        return name.strip("{}")


def _pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def _flatten(data: dict[Any, Any]) -> list[Any]:
    return [item for pair in data.items() for item in pair]
