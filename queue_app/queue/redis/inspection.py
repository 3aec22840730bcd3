"""Read-only answers to an operator's questions about one queue, as rows of plain values.

``QueueInspector`` reads what ``manage.py queue_inspect`` shows: consumer groups and consumers
of every stream of a queue (one per priority in use), pending deliveries, dead letters, one
job's hash and the queue's keys with their type, TTL and size. It writes nothing, and names keys
only through ``Keys``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..base import JobStatus
from ..config import QueueConfig
from .keys import Keys
from .observe import streams_of
from .outage import translate_errors
from .status import JobStatusTracker, pairs_to_dict, text

#: One row of an answer: column name -> plain value (str, int, float or None).
Row = dict[str, Any]
#: Size command of each Redis type.
SIZE_OF = {
    "stream": "XLEN",
    "zset": "ZCARD",
    "hash": "HLEN",
    "set": "SCARD",
    "list": "LLEN",
    "string": "STRLEN",
}
#: Columns of ``groups`` and ``consumers`` rows -> the XINFO field they show.
GROUP_COLUMNS = {
    "group": "name",
    "consumers": "consumers",
    "pending": "pending",
    "last_delivered": "last-delivered-id",
    "lag": "lag",
}
CONSUMER_COLUMNS = {
    "consumer": "name",
    "pending": "pending",
    "idle_ms": "idle",
    "inactive_ms": "inactive",
}
#: Minutes of per-minute outcome counters kept (``P q:m:<minute>`` lives 2 hours).
MINUTE_KEYS_KEPT = 121


class QueueInspector:
    """Read a queue's streams, groups, pending deliveries, dead letters, jobs and keys."""

    def __init__(self, redis_client: Any, config: QueueConfig) -> None:
        self._redis = redis_client
        self.config = config
        self.keys = Keys(config.key_prefix, config.cluster_keys)
        self.tracker = JobStatusTracker(redis_client, config)

    @translate_errors
    async def queue_names(self) -> list[str]:
        """Return the queues that can be inspected: declared ones and those Redis knows."""
        found = set(await self.tracker.queue_names())
        return sorted(found | set(self.config.queues or ()))

    async def streams(self, queue: str) -> list[str]:
        """Return the streams of ``queue``: one per priority in use, highest first."""
        return (await streams_of(self._redis, self.keys, [queue]))[queue]

    @translate_errors
    async def groups(self, queue: str) -> list[Row]:
        """Return XINFO GROUPS of each stream of ``queue``."""
        read = lambda pipe, stream: pipe.xinfo_groups(stream)  # noqa: E731
        return await self._info_rows(queue, read, GROUP_COLUMNS)

    @translate_errors
    async def consumers(self, queue: str) -> list[Row]:
        """Return XINFO CONSUMERS of the queue's group on each of its streams."""
        group = self.config.consumer_group
        read = lambda pipe, stream: pipe.xinfo_consumers(stream, group)  # noqa: E731
        return await self._info_rows(queue, read, CONSUMER_COLUMNS)

    @translate_errors
    async def pending_summary(self, queue: str) -> list[Row]:
        """Return the XPENDING summary of each stream: count, id range, count per consumer."""
        group = self.config.consumer_group
        rows: list[Row] = []
        read = lambda pipe, stream: pipe.xpending(stream, group)  # noqa: E731
        for stream, summary in await self._each_stream(queue, read):
            rows.append(
                {
                    "stream": stream,
                    "pending": int(summary["pending"]),
                    "oldest": summary["min"],
                    "newest": summary["max"],
                    "consumers": {c["name"]: int(c["pending"]) for c in summary["consumers"]},
                }
            )
        return rows

    @translate_errors
    async def pending(self, queue: str, count: int) -> list[Row]:
        """Return the ``count`` oldest pending deliveries (by entry id) with their job ids.

        Idle time is since the last delivery or heartbeat: a long one means a dead or hung worker
        (``claim_idle_ms`` later, another worker takes the entry over).
        """
        group = self.config.consumer_group
        rows: list[Row] = []
        read = lambda pipe, stream: pipe.xpending_range(stream, group, "-", "+", count)  # noqa: E731
        for stream, entries in await self._each_stream(queue, read):
            for entry in entries:
                rows.append(
                    {
                        "stream": stream,
                        "entry": text(entry["message_id"]),
                        "consumer": text(entry["consumer"]),
                        "idle_ms": int(entry["time_since_delivered"]),
                        "deliveries": int(entry["times_delivered"]),
                    }
                )
        rows.sort(key=lambda row: tuple(int(part) for part in row["entry"].split("-")))
        rows = rows[:count]
        await self._add_job_ids(rows)
        return rows

    @translate_errors
    async def dead_letters(self, queue: str, count: int) -> list[Row]:
        """Return the newest ``count`` dead-lettered jobs with their last error."""
        jobs = await self.tracker.list_dead_letters(queue, count)
        return [
            {
                "job_id": job.id,
                "job_type": job.metadata.get("job_type"),
                "status": job.status.value,
                "attempts": job.attempts,
                "failed_at": job.completed_at,
                "error": job.error,
            }
            for job in jobs
        ]

    @translate_errors
    async def job(self, job_id: str) -> Row | None:
        """Return every field of the job's hash (None: unknown or expired), with its key and TTL."""
        queues = await self.tracker.queue_names() if self.keys.cluster else [""]
        for queue in queues:
            key = self.keys.job(job_id, queue)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                pipe.pttl(key)
                data, ttl_ms = await pipe.execute()
            if data:
                fields = pairs_to_dict(_flatten(data))
                return {"key": key, "ttl_ms": int(ttl_ms), **fields}
        return None

    @translate_errors
    async def queue_keys(self, queue: str) -> list[Row]:
        """Return each existing key of ``queue`` with its type, TTL (ms, -1: none) and size."""
        candidates = await self._candidate_keys(queue)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in candidates:
                pipe.type(key)
                pipe.pttl(key)
            replies = await pipe.execute()
        found = [
            (key, text(kind), int(ttl))
            for key, kind, ttl in zip(candidates, replies[::2], replies[1::2], strict=True)
            if text(kind) != "none"
        ]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, kind, _ in found:
                pipe.execute_command(SIZE_OF.get(kind, "EXISTS"), key)
            sizes = await pipe.execute()
        return [
            {"key": key, "type": kind, "ttl_ms": ttl, "size": int(size)}
            for (key, kind, ttl), size in zip(found, sizes, strict=True)
        ]

    async def _candidate_keys(self, queue: str) -> list[str]:
        """Return every key ``Keys`` names for ``queue`` (scope keys found by SCAN)."""
        keys = self.keys
        named = [*await self.streams(queue), keys.levels(queue), keys.delayed(queue)]
        named += [keys.index(queue, status.value) for status in JobStatus]
        named += [keys.dead(queue), keys.ledger(queue)]
        minute = int(time.time()) // 60
        named += [keys.minute(queue, minute - back) for back in range(MINUTE_KEYS_KEPT)]
        pattern = keys.scope(queue, "*")
        named += sorted([text(key) async for key in self._redis.scan_iter(match=pattern)])
        return named

    async def _each_stream(
        self, queue: str, read: Callable[[Any, str], Any]
    ) -> list[tuple[str, Any]]:
        """Queue ``read(pipe, stream)`` for each stream of ``queue``; skip streams it fails on.

        A stream (or its group) that does not exist yet answers an error: nothing to show.
        """
        streams = await self.streams(queue)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                read(pipe, stream)
            replies = await pipe.execute(raise_on_error=False)
        return [
            (stream, reply)
            for stream, reply in zip(streams, replies, strict=True)
            if not isinstance(reply, Exception)
        ]

    async def _info_rows(
        self, queue: str, read: Callable[[Any, str], Any], columns: dict[str, str]
    ) -> list[Row]:
        """Return one row per record of an XINFO reply on each stream, with ``columns``."""
        rows: list[Row] = []
        for stream, records in await self._each_stream(queue, read):
            for record in records or []:
                fields = _decoded(record)
                rows.append({"stream": stream} | {c: fields.get(f) for c, f in columns.items()})
        return rows

    async def _add_job_ids(self, rows: Sequence[Row]) -> None:
        """Set each pending row's ``job_id`` from its stream entry (None: entry deleted)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xrange(row["stream"], min=row["entry"], max=row["entry"], count=1)
            replies = await pipe.execute()
        for row, reply in zip(rows, replies, strict=True):
            fields = pairs_to_dict(_flatten(reply[0][1])) if reply else {}
            row["job_id"] = fields.get("job_id")


def _decoded(info: Any) -> Row:
    """Return an XINFO reply (a dict, or a flat list without the client's parsing) as text."""
    pairs = info.items() if isinstance(info, dict) else zip(info[::2], info[1::2], strict=True)
    return {text(key): text(value) if isinstance(value, bytes) else value for key, value in pairs}


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [item for pair in data.items() for item in pair]
    return list(data)
