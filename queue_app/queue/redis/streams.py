"""RedisStreamsQueue: the JobQueue on Redis Streams consumer groups, one Lua script per change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import FinishResult, Job, JobQueue, JobStatus, OutcomeRow
from ..config import QueueConfig, get_queue_config
from ..errors import InvalidJob, QueueConnectionError, RedisTooOld
from ..records import RecordStore
from ..tracing import producer_span, tracing_enabled
from .connect import client_from_url, is_cluster_client
from .consumer import QueueConsumer
from .core import (
    Delivery,
    check_queue_name,
    default_consumer_name,
    dumps,
    to_delay_ms,
)
from .enqueue import batches, encode_json, enqueue_call, job_rows, refusal
from .kind_support import KindSupport
from .lane import Lane
from .outage import translate_errors
from .records import RedisRecordStore
from .replication import run_enqueue
from .scripts import SCRIPTS, lost, prepare
from .status import text

__all__ = ["Delivery", "RedisStreamsQueue", "create_redis_queue"]


class RedisStreamsQueue(QueueConsumer, KindSupport, JobQueue):
    """Job queue on Redis Streams: at-least-once delivery, atomic transitions, fencing tokens."""

    @translate_errors
    async def enqueue(
        self,
        job: Job,
        priority: int = 0,
        queue_name: str | None = None,
        delay_seconds: float = 0,
    ) -> str:
        """Add ``job`` (no-op when its id is already known); return its id."""
        await self._enqueue_if_new(job, priority, queue_name, delay_seconds)
        return job.id

    @translate_errors
    async def enqueue_if_new(
        self,
        job: Job,
        priority: int = 0,
        queue_name: str | None = None,
        delay_seconds: float = 0,
    ) -> bool:
        """Add ``job`` unless a job with its id exists; return whether it was added.

        The check and the add are one script: of concurrent calls with one id, one adds.
        """
        return await self._enqueue_if_new(job, priority, queue_name, delay_seconds)

    async def _enqueue_if_new(
        self, job: Job, priority: int, queue_name: str | None, delay_seconds: float
    ) -> bool:
        queue = self._queue(queue_name)
        if not tracing_enabled():
            return await self._enqueue_one(job, queue, priority, delay_seconds, False)
        with producer_span(queue, job):
            return await self._enqueue_one(job, queue, priority, delay_seconds, True)

    async def _enqueue_one(
        self, job: Job, queue: str, priority: int, delay_seconds: float, in_span: bool
    ) -> bool:
        """Add one job; ``in_span``: inside its PRODUCER span, which gave it its trace context.

        Outside a span the call goes on the queue's lane; inside, through the client, whose
        commands the Redis instrumentation records as children of the span.
        """
        await self.ensure_queue(queue)
        rows = job_rows([job], queue, priority, delay_seconds, self.config, not in_span)
        limit = self.config.depth_limit(queue)
        lane = None if in_span else self.enqueue_lane
        [added] = await self._enqueue_parts(queue, batches(rows, limit), limit, lane)
        return bool(added)

    @translate_errors
    async def enqueue_many(
        self,
        jobs: Sequence[Job],
        queue_name: str | None = None,
        priority: int = 0,
        delay_seconds: float = 0,
        trace_jobs: bool = True,
    ) -> list[str]:
        """Add many jobs; return their ids.

        Under a depth limit (``QueueConfig.max_depth``/``max_depths``) one script call adds the
        whole batch or none of it; otherwise one call per 500 jobs, pipelined.

        Raises:
            UndeclaredQueue: the queue is not declared.
            QueueFull: the batch would take the queue's waiting jobs past its depth limit.
        """
        queue = self._queue(queue_name)
        await self.ensure_queue(queue)
        rows = job_rows(jobs, queue, priority, delay_seconds, self.config, trace_jobs)
        limit = self.config.depth_limit(queue)
        # While tracing, through the client: its commands are recorded as spans.
        lane = None if tracing_enabled() else self.enqueue_lane
        await self._enqueue_parts(queue, batches(rows, limit), limit, lane)
        return [job.id for job in jobs]

    async def _enqueue_parts(
        self, queue: str, parts: list[list[list[Any]]], limit: int | None, lane: Lane | None = None
    ) -> list[int]:
        """Add batches, one script call each, all at once; return per row 1 (added) or 0.

        0 means the id was already known. With ``QueueConfig.enqueue_replicas`` the calls are
        confirmed by replicas (``replication.run_enqueue``).
        """
        calls = [enqueue_call(self, queue, part, limit) for part in parts]
        try:
            replies = await run_enqueue(self._redis, calls, self.config, lane)
        except ResponseError as error:
            full = refusal(queue, error)
            if full is None:
                raise
            raise full from None
        return [int(added) for reply in replies for added in reply]

    # -- outcomes ---------------------------------------------------------------------------

    @translate_errors
    async def finish_many(self, outcomes: Sequence[OutcomeRow]) -> list[FinishResult]:
        """Record ``(job_id, token, outcome, data, delay_ms)`` rows, one script call per queue.

        Outcomes are ``completed``, ``failed``, ``cancelled``, ``retry``, ``defer`` and
        ``requeue``. Each row is written under its own token (an empty one means this
        consumer's current delivery of the job): a stale attempt is FENCED, and a row written
        before under the same token (a retry after a lost reply) is APPLIED, not written twice.
        """
        results = [FinishResult.FENCED] * len(outcomes)
        for queue, rows in self._rows_by_queue(outcomes).items():
            replies = await self._run_finish(queue, rows)
            self._finished(rows, replies, results)
        return results

    @translate_errors
    async def finish_and_take(
        self,
        outcomes: Sequence[OutcomeRow],
        worker_id: str,
        count: int,
        queue_names: Sequence[str] | None = None,
    ) -> tuple[list[FinishResult | None], list[Job]]:
        """``finish_many``, then start up to ``count`` jobs without waiting: one round trip
        when one queue is read (the outcomes of its jobs go in front of the take)."""
        queues = list(queue_names or [self.config.default_queue])
        by_queue = self._rows_by_queue(outcomes)
        if len(queues) != 1 or set(by_queue) - set(queues):
            return await super().finish_and_take(outcomes, worker_id, count, queues)
        queue, rows = queues[0], by_queue.get(queues[0], [])
        call = self.script_call("finish", queue, *self._finish_parts(queue, rows))
        finish = [SCRIPTS["finish"].command(*call)] if rows else []
        replies, jobs = await self.take_after(finish, worker_id, count, queue)
        results: list[FinishResult | None] = [FinishResult.FENCED] * len(outcomes)
        for reply in replies:
            if lost(reply):  # the take loaded the library again
                reply = await self._run_finish(queue, rows)
            if isinstance(reply, ResponseError):  # a refusal (OOM...): jobs may have started
                for index, _ in rows:
                    results[index] = None
            else:
                self._finished(rows, reply, results)
        return results, jobs

    def _rows_by_queue(
        self, outcomes: Sequence[OutcomeRow]
    ) -> dict[str, list[tuple[int, OutcomeRow]]]:
        """Group the rows of running deliveries by queue, each with its index and its token."""
        by_queue: dict[str, list[tuple[int, OutcomeRow]]] = {}
        for index, (job_id, token, outcome, data, delay_ms) in enumerate(outcomes):
            delivery = self._running.get(job_id)
            if delivery is not None:
                row = (job_id, token or delivery.token, outcome, data, delay_ms)
                by_queue.setdefault(delivery.queue, []).append((index, row))
        return by_queue

    def _finish_parts(
        self, queue: str, rows: list[tuple[int, OutcomeRow]]
    ) -> tuple[list[Any], list[str]]:
        """Return the ARGV and the job keys of the finish script for ``rows`` of ``queue``."""
        ids = [row[0] for _, row in rows]
        keys = [*self.keys.jobs(queue, ids), *self.keys.jobs(queue, ids, "checkpoints")]
        return [encode_json([row for _, row in rows])], keys

    async def _run_finish(self, queue: str, rows: list[tuple[int, OutcomeRow]]) -> Any:
        return await self._run("finish", queue, *self._finish_parts(queue, rows), self.finish_lane)

    def _finished(
        self, rows: list[tuple[int, OutcomeRow]], replies: Any, results: list[Any]
    ) -> None:
        for (index, row), reply in zip(rows, replies, strict=True):
            results[index] = FINISH_REPLIES[int(reply)]
            self._forget_delivery(row[0], row[1])

    def _forget_delivery(self, job_id: str, token: str) -> None:
        """Stop tracking the delivery of ``token``; a newer delivery of the job stays ours."""
        delivery = self._running.get(job_id)
        if delivery is not None and delivery.token == token:
            del self._running[job_id]

    async def _finish(self, job_id: str, outcome: str, data: str = "", delay_ms: int = 0) -> bool:
        [result] = await self.finish_many([(job_id, "", outcome, data, delay_ms)])
        return result.recorded

    async def complete(
        self, job_id: str, result: Any = None, status: JobStatus | None = None
    ) -> bool:
        """Record the end of a running job: completed with ``result`` unless ``status`` says so."""
        status = JobStatus(status or JobStatus.COMPLETED)
        if status is JobStatus.FAILED:
            return await self._finish(job_id, "failed", str(result or "failed"))
        if status is JobStatus.CANCELLED:
            return await self._finish(job_id, "cancelled")
        if status is not JobStatus.COMPLETED:
            raise InvalidJob(f"complete() takes a terminal status, not {status.value}")
        return await self._finish(job_id, "completed", dumps(result, "result"))

    async def fail(self, job_id: str, error: str, requeue: bool = False) -> bool:
        """Record a failed run; with ``requeue`` and attempts left, retry after the backoff."""
        delivery = self._running.get(job_id)
        if requeue and delivery is not None and delivery.attempts < delivery.max_attempts:
            delay = self.retry_policy.get_delay(delivery.attempts - 1)
            return await self.retry(job_id, error, delay)
        return await self._finish(job_id, "failed", str(error))

    async def retry(self, job_id: str, error: str, delay_seconds: float) -> bool:
        """Mark a running job RETRYING; it is due again after ``delay_seconds``."""
        return await self._finish(job_id, "retry", str(error), to_delay_ms(delay_seconds))

    async def ack(self, job_id: str) -> bool:
        """Acknowledge a running job as completed without a result."""
        return await self.complete(job_id)

    async def nack(self, job_id: str, requeue: bool = True) -> bool:
        """Give a running job back to the queue now (``requeue``) or fail it as rejected."""
        if requeue:
            return await self._finish(job_id, "requeue")
        return await self._finish(job_id, "failed", "rejected by worker")

    @translate_errors
    async def set_progress(self, job_id: str, progress: Any) -> bool:
        """Record JSON ``progress`` of a job this consumer runs; False when no longer ours."""
        delivery = self._running.get(job_id)
        if delivery is None:
            return False
        data = dumps(progress, "progress")
        keys = [self.keys.job(job_id, delivery.queue)]
        reply = await self._run("progress", delivery.queue, [job_id, delivery.token, data], keys)
        return bool(reply)

    # -- status, cancel, stats ----------------------------------------------------------------

    @translate_errors
    async def get_status(self, job_id: str) -> Job | None:
        """Return the job as last recorded, or None when unknown or expired."""
        return await self.tracker.get_job(job_id)

    @translate_errors
    async def cancel(self, job_id: str) -> bool:
        """Cancel a pending, retrying or running job; False when unknown or already finished."""
        return await self._on_job("cancel", job_id)

    @translate_errors
    async def revive(self, job_id: str) -> bool:
        """Run a failed or cancelled job again from attempt 0 (dead-letter retry)."""
        return await self._on_job("revive", job_id)

    @translate_errors
    async def discard_dead_letters(self, jobs: Sequence[tuple[str, str]]) -> int:
        """Forget the dead letters among ``(job id, queue)`` pairs; return how many were there.

        The jobs stay failed (and expire with their retention); they are only no longer listed
        as dead letters to retry.
        """
        if not jobs:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, queue in jobs:
                pipe.zrem(self.keys.dead(queue), job_id)
            return sum(int(removed) for removed in await pipe.execute())

    async def _on_job(self, script: str, job_id: str) -> bool:
        """Run ``script`` on a job found by id alone (its hash names its queue)."""
        job = await self.tracker.get_job(job_id)
        if job is None or job.queue is None:
            return False
        keys = [self.keys.job(job_id, job.queue)]
        return bool(await self._run(script, job.queue, [job_id], keys))

    @translate_errors
    async def get_queue_stats(self, queue_name: str | None = None) -> dict[str, int]:
        """Return stream length, pending entries in the group, delayed, dead letters, counts."""
        queue = check_queue_name(self._queue(queue_name))
        return (await self.get_queues_stats([queue]))[queue]

    @translate_errors
    async def get_queues_stats(self, queue_names: Sequence[str]) -> dict[str, dict[str, int]]:
        """Return ``get_queue_stats`` of every queue named, in two pipelined round trips.

        Reads only: asking about a queue creates no key.
        """
        queues = [check_queue_name(queue) for queue in queue_names]
        if not queues:
            return {}
        levels = await self.levels(queues)
        streams = {queue: self.keys.streams(queue, levels[queue]) for queue in queues}
        # One MULTI on a single server: the counts are one snapshot, so a job moving between
        # two statuses meanwhile is counted once (a burst worker ends only when all are 0).
        atomic = not is_cluster_client(self._redis)
        async with self._redis.pipeline(transaction=atomic) as pipe:
            for queue in queues:
                for stream in streams[queue]:
                    pipe.xlen(stream)
                for stream in streams[queue]:
                    pipe.xpending(stream, self.group_name)
                pipe.zcard(self.keys.delayed(queue))
                pipe.zcard(self.keys.dead(queue))
                for status in JobStatus:
                    pipe.zcard(self.keys.index(queue, status.value))
            replies = await pipe.execute(raise_on_error=False)
        stats, offset = {}, 0
        for queue in queues:
            size = 2 * len(streams[queue]) + 2 + len(JobStatus)
            stats[queue] = _stats(len(streams[queue]), replies[offset : offset + size])
            offset += size
        return stats

    # -- maintenance: promotion, takeover, heartbeat ----------------------------------------

    @translate_errors
    async def promote(self, queue_names: Sequence[str] | None = None) -> int:
        """Move due delayed and retrying jobs into their streams; return how many."""
        promoted = 0
        for queue in queue_names or [self.config.default_queue]:
            count, due_ms = await self._run("promote", queue, [1000])
            self._next_due_ms[queue] = int(due_ms)
            promoted += int(count)
        return promoted

    @translate_errors
    async def claim_stale_jobs(
        self, idle_ms: int, queue_names: Sequence[str] | None = None, limit: int = 100
    ) -> int:
        """Take over deliveries idle past ``idle_ms``; the next ``dequeue`` starts them."""
        claimed = 0
        for queue in queue_names or [self.config.default_queue]:
            if claimed >= limit:
                break
            await self.ensure_queue(queue)
            args = [self.consumer_name, int(idle_ms), limit - claimed]
            claimed += await self._claim(queue, args)
        return claimed

    @translate_errors
    async def heartbeat(self) -> list[str]:
        """Reset the idle time of running deliveries; return the ids no longer ours."""
        by_queue: dict[str, list[Delivery]] = {}
        for delivery in list(self._running.values()):
            by_queue.setdefault(delivery.queue, []).append(delivery)
        lost: list[str] = []
        for queue, deliveries in by_queue.items():
            flat = [item for d in deliveries for item in (d.job_id, d.token)]
            keys = self.keys.jobs(queue, [d.job_id for d in deliveries])
            args = [self.consumer_name, len(deliveries), *flat]
            reply = await self._run("heartbeat", queue, args, keys)
            lost.extend(text(job_id) for job_id in reply)
        for job_id in lost:
            self._running.pop(job_id, None)
        return lost

    def records(self) -> RecordStore:
        """Return the JSON records kept in this queue's Redis (``P rec:<name>`` keys)."""
        return RedisRecordStore(self._redis, self.keys)

    @translate_errors
    async def ping(self) -> None:
        """Check that Redis answers (raises ``QueueConnectionError`` when it does not)."""
        await self._redis.ping()

    @translate_errors
    async def close(self) -> None:
        """Close the Redis client when this queue created it."""
        await self.stop_reads()
        for lane in self.lanes:
            await lane.close()
        if self.owns_client:
            await self._redis.aclose()

    @classmethod
    def from_config(
        cls,
        config: QueueConfig | None = None,
        consumer_name: str | None = None,
        redis_url: str | None = None,
    ) -> RedisStreamsQueue:
        """Return a queue on its own client, not connected yet (its first command connects)."""
        config = config or get_queue_config()
        client = client_from_url(redis_url or config.redis_url, **client_options(config))
        queue = cls(client, consumer_name or default_consumer_name(), config)
        queue.owns_client = True
        return queue


def client_options(config: QueueConfig) -> dict[str, Any]:
    """Return the options of every long-lived Redis client: timeouts, keepalive, health checks."""
    return {
        "decode_responses": True,
        "socket_keepalive": True,
        "socket_connect_timeout": config.connect_timeout,
        "socket_timeout": config.socket_timeout,
        "health_check_interval": config.health_check_interval,
        "retry_on_timeout": False,
    }


#: Replies of finish.lua per row.
FINISH_REPLIES = {0: FinishResult.FENCED, 1: FinishResult.WRITTEN, 2: FinishResult.APPLIED}


async def create_redis_queue(
    redis_url: str | None = None,
    consumer_name: str | None = None,
    config: QueueConfig | None = None,
) -> RedisStreamsQueue:
    """Connect to Redis (hiredis parser when installed) and return a ready queue.

    Raises:
        QueueConnectionError: Redis is unreachable.
        RedisTooOld: Redis is older than 7.0 (no functions).
    """
    config = config or get_queue_config()
    queue = RedisStreamsQueue.from_config(config, consumer_name, redis_url)
    try:
        await queue.ensure_queue(config.default_queue)
        await prepare(queue.redis)
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        await queue.close()
        raise QueueConnectionError(f"Redis unreachable: {error}") from error
    except RedisTooOld:
        await queue.close()
        raise
    return queue


def _stats(count: int, replies: list[Any]) -> dict[str, int]:
    """Turn a queue's replies (XLEN, XPENDING of its ``count`` streams, ZCARDs) into stats."""
    lengths, pendings, rest = replies[:count], replies[count : 2 * count], replies[2 * count :]
    pendings = [p for p in pendings if not isinstance(p, Exception)]  # no group on that stream
    stats = {
        "stream_length": sum(int(n) for n in lengths),
        "pending_in_group": sum(int(p["pending"]) for p in pendings),
        "delayed": int(rest[0]),
        "dead_letters": int(rest[1]),
    }
    stats.update({s.value: int(n) for s, n in zip(JobStatus, rest[2:], strict=True)})
    return stats
