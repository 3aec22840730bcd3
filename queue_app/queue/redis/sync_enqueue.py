"""SyncEnqueuer: the enqueue step of a ``RedisStreamsQueue`` for sync callers, on their thread.

Django views and ``task.enqueue()`` are sync. Handing each of their enqueues to the event loop
thread that owns the queue's async client costs two thread switches per call, more than the
enqueue itself; this runs the same step (``enqueue.py`` rows, ``lua/enqueue.lua``) on a sync
client, whose connection pool is thread-safe. Same guarantees: one atomic script call per batch,
idempotent ids, depth limits, declared queues, the PRODUCER span and trace context.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from ..base import Job
from ..tracing import producer_span, tracing_enabled
from .connect import sync_client_from_url
from .core import QueueCore, check_declared, check_setup
from .enqueue import batches, enqueue_call, job_rows, refusal
from .lane import SyncLane
from .outage import translate_errors_sync
from .replication import run_enqueue_sync
from .streams import client_options


class SyncEnqueuer:
    """Enqueue on ``queue``'s Redis, queues and config from sync code (any thread)."""

    def __init__(self, queue: QueueCore, client: redis.Redis | RedisCluster) -> None:
        #: The async queue whose key schema, config and script arguments this shares.
        self.queue = queue
        self._redis = client
        #: The connection that enqueues one by one outside a span (``lane.py``).
        self._lane = SyncLane.of(client)
        self._known_queues: set[str] = set()

    @classmethod
    def beside(cls, queue: QueueCore, redis_url: str | None = None) -> SyncEnqueuer:
        """Return an enqueuer on a sync client of ``queue``'s Redis, with the same options."""
        config = queue.config
        client = sync_client_from_url(redis_url or config.redis_url, **client_options(config))
        return cls(queue, client)

    @translate_errors_sync
    def enqueue_if_new(
        self,
        job: Job,
        priority: int = 0,
        queue_name: str | None = None,
        delay_seconds: float = 0,
    ) -> bool:
        """Add ``job`` as ``RedisStreamsQueue.enqueue_if_new`` does; True if it was new."""
        queue = queue_name or self.queue.config.default_queue
        if not tracing_enabled():
            return self._add([job], queue, priority, delay_seconds, True, lane=self._lane) == [1]
        with producer_span(queue, job):  # through the client: its commands are the span's children
            return self._add([job], queue, priority, delay_seconds, False) == [1]

    @translate_errors_sync
    def enqueue_many(
        self,
        jobs: Sequence[Job],
        queue_name: str | None = None,
        priority: int = 0,
        delay_seconds: float = 0,
    ) -> list[str]:
        """Add many jobs as ``RedisStreamsQueue.enqueue_many`` does; return their ids.

        Raises:
            UndeclaredQueue: the queue is not declared.
            QueueFull: the batch would take the queue's waiting jobs past its depth limit.
        """
        queue = queue_name or self.queue.config.default_queue
        self._add(jobs, queue, priority, delay_seconds, True, lane=self._batch_lane())
        return [job.id for job in jobs]

    @translate_errors_sync
    def enqueue_together(
        self, jobs: Sequence[Job], queue_name: str, delays: Sequence[float]
    ) -> list[bool]:
        """Add ``jobs`` (own priorities, one delay each) in one script call: all of them or none.

        None is added when any id is already known, or under a depth limit when they would take
        the queue past it. Return per job whether its id was new (all True: all were added).

        Raises:
            UndeclaredQueue: the queue is not declared.
            QueueFull: the jobs would take the queue's waiting jobs past its depth limit.
        """
        added = self._add(jobs, queue_name, 0, delays, True, True, self._batch_lane())
        return [bool(one) for one in added]

    def _batch_lane(self) -> SyncLane | None:
        """Return the lane for a batch, or None while tracing (the client's commands are spans)."""
        return None if tracing_enabled() else self._lane

    def _add(
        self,
        jobs: Sequence[Job],
        queue: str,
        priority: int,
        delay: float | Sequence[float],
        trace: bool,
        whole: bool = False,
        lane: SyncLane | None = None,
    ) -> list[int]:
        """Add ``jobs``; return per job 1 (added) or 0 (id already known).

        ``whole``: one script call, all jobs or none (none when any id is known).
        """
        self._ensure_queue(queue)
        rows = job_rows(jobs, queue, priority, delay, self.queue.config, trace)
        limit = self.queue.config.depth_limit(queue)
        calls = [
            enqueue_call(self.queue, queue, part, limit, whole)
            for part in batches(rows, limit, whole)
        ]
        try:
            replies = run_enqueue_sync(self._redis, calls, self.queue.config, lane)
        except ResponseError as error:
            full = refusal(queue, error)
            if full is None:
                raise
            raise full from None
        return [int(added) for reply in replies for added in reply]

    def _ensure_queue(self, queue: str) -> None:
        if queue in self._known_queues:
            return
        check_declared(self.queue.config, queue)
        with self._redis.pipeline(transaction=False) as pipe:
            self.queue.queue_setup(pipe, queue)
            check_setup(pipe.execute(raise_on_error=False))
        self._known_queues.add(queue)

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._lane is not None:
            self._lane.close()
        self._redis.close()
