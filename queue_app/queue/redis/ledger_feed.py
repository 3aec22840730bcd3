"""LedgerReader: drain the per-queue job event streams that feed the database ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from ..base import Job
from ..config import QueueConfig
from .keys import Keys
from .outage import translate_errors
from .status import JobStatusTracker, job_from_hash, text

#: Consumer group of ledger readers on every ``P q:ledger`` stream.
LEDGER_GROUP = "ledger-writers"
#: Seconds between takeovers of events a dead reader left unacknowledged.
CLAIM_EVERY_SECONDS = 30.0
#: Job hashes decoded between two yields to the event loop (well under 1 ms), so that a batch
#: read beside a worker does not hold up the jobs it runs.
DECODE_SLICE = 25


class LedgerEvent(NamedTuple):
    """One job event: the job as stored now (None once its hash expired)."""

    queue: str
    entry: str
    job_id: str
    status: str
    job: Job | None


class LedgerReader:
    """Read job events in batches, with the jobs' current data, and acknowledge them when stored.

    Events stay in the stream until ``ack``: a reader that dies, or a database that is down,
    delays the ledger but loses no event (another reader takes them over after ``claim_idle_ms``).
    """

    def __init__(self, redis_client: Any, consumer_name: str, config: QueueConfig):
        self._redis = redis_client
        self.consumer_name = consumer_name
        self.config = config
        self.keys = Keys(self.config.key_prefix, self.config.cluster_keys)
        self._tracker = JobStatusTracker(redis_client, self.config)
        self._grouped: set[str] = set()
        self._own_backlog = True
        self._last_claim = 0.0

    @translate_errors
    async def read(
        self, count: int = 500, block_ms: int = 1000, queue_names: Sequence[str] | None = None
    ) -> list[LedgerEvent]:
        """Return up to ``count`` events: this reader's unacknowledged ones first, then new ones."""
        queues = list(queue_names or await self._tracker.queue_names())
        await self._ensure_groups(queues)
        raw = await self._claim_stale(queues, count)
        if not raw:
            raw = await self._read(queues, count, "0" if self._own_backlog else ">", None)
            self._own_backlog = bool(raw)
        if not raw:
            raw = await self._read(queues, count, ">", block_ms)
        return await self._with_jobs(raw)

    def rewind(self) -> None:
        """Read this reader's unacknowledged events again (after a failed store)."""
        self._own_backlog = True

    @translate_errors
    async def ack(self, events: Sequence[LedgerEvent]) -> None:
        """Acknowledge and delete stored events: one XACK and one XDEL per stream."""
        if not events:
            return
        entries: dict[str, list[str]] = {}
        for event in events:
            entries.setdefault(self.keys.ledger(event.queue), []).append(event.entry)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in entries.items():
                pipe.xack(stream, LEDGER_GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    @translate_errors
    async def backlog(self, queue_names: Sequence[str] | None = None) -> int:
        """Return how many events wait in the ledger streams (unread or unacknowledged)."""
        queues = list(queue_names or await self._tracker.queue_names())
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.xlen(self.keys.ledger(queue))
            return sum(int(n) for n in await pipe.execute())

    async def _ensure_groups(self, queues: list[str]) -> None:
        for queue in queues:
            if queue in self._grouped:
                continue
            try:
                await self._redis.xgroup_create(
                    self.keys.ledger(queue), LEDGER_GROUP, id="0", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._grouped.add(queue)

    async def _read(
        self, queues: list[str], count: int, start: str, block_ms: int | None
    ) -> list[tuple[str, str, dict[str, str]]]:
        """Read the ledger streams; on a cluster, one read per slot, all at once."""
        by_stream = {self.keys.ledger(queue): queue for queue in queues}
        groups = self.keys.by_slot(by_stream)
        replies = await asyncio.gather(
            *(self._read_slot(streams, count, start, block_ms) for streams in groups)
        )
        out = []
        for reply in replies:
            items = reply.items() if isinstance(reply, dict) else (reply or [])
            for stream, messages in items:
                for entry, fields in messages[0] if isinstance(reply, dict) else messages:
                    decoded = {text(k): text(v) for k, v in (fields or {}).items()}
                    out.append((by_stream[text(stream)], text(entry), decoded))
        return out

    async def _read_slot(
        self, streams: list[str], count: int, start: str, block_ms: int | None
    ) -> Any:
        try:
            return await self._redis.xreadgroup(
                LEDGER_GROUP,
                self.consumer_name,
                dict.fromkeys(streams, start),
                count=count,
                block=block_ms,
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._grouped.clear()
            return []

    async def _claim_stale(
        self, queues: list[str], count: int
    ) -> list[tuple[str, str, dict[str, str]]]:
        if time.monotonic() - self._last_claim < CLAIM_EVERY_SECONDS:
            return []
        self._last_claim = time.monotonic()
        out = []
        for queue in queues:
            _, messages, *_ = await self._redis.xautoclaim(
                self.keys.ledger(queue),
                LEDGER_GROUP,
                self.consumer_name,
                self.config.claim_idle_ms,
                "0-0",
                count=count,
            )
            for entry, fields in messages:
                decoded = {text(k): text(v) for k, v in (fields or {}).items()}
                out.append((queue, text(entry), decoded))
        return out

    async def _with_jobs(self, raw: list[tuple[str, str, dict[str, str]]]) -> list[LedgerEvent]:
        """Attach each job's current data, read once per job however many events it has."""
        if not raw:
            return []
        keys = list(dict.fromkeys(self.keys.job(f.get("job_id", ""), q) for q, _, f in raw))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            hashes = await pipe.execute()
        jobs: dict[str, Job | None] = {}
        for index, (key, data) in enumerate(zip(keys, hashes, strict=True)):
            if index and not index % DECODE_SLICE:
                await asyncio.sleep(0)
            jobs[key] = job_from_hash(_decoded(data)) if data else None
        return [
            LedgerEvent(
                queue,
                entry,
                fields.get("job_id", ""),
                fields.get("status", ""),
                jobs[self.keys.job(fields.get("job_id", ""), queue)],
            )
            for queue, entry, fields in raw
        ]


def _decoded(data: dict[Any, Any]) -> dict[str, str]:
    """Return a hash reply as str, whether the client decodes responses or not."""
    if isinstance(next(iter(data)), bytes):
        return {key.decode(): value.decode() for key, value in data.items()}
    return {text(key): text(value) for key, value in data.items()}
