"""BaseWorker: read loop, bounded concurrency, job timeouts, batched outcomes, graceful drain."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from queue_app.queue import Job, QueueConnectionError, RetryPolicy
from queue_app.queue.redis import RedisStreamsQueue, WorkerRegistry

from .maintenance import Maintenance, Outage
from .middleware import MiddlewareChain, log_extra
from .sinks import EndpointStore

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class KindOptions:
    """Settings a worker kind may need to build its handlers."""

    #: Dotted path of a debate executor factory (None: the default executor).
    executor_path: str | None = None
    #: Deliver webhooks to private, loopback and link-local addresses (development, tests).
    webhook_allow_private: bool = False
    #: Webhook endpoints, circuits and delivery log (needed by the ``webhooks`` queue).
    endpoint_store: EndpointStore | None = None


@dataclass(frozen=True, slots=True)
class WorkerKind:
    """The handlers of one queue's job types, and what to release when the worker stops."""

    handlers: Mapping[str, Handler]
    closers: tuple[Callable[[], Awaitable[None]], ...] = ()


#: The queue and id of the job the current task runs (for ``report_progress``).
_current: contextvars.ContextVar[tuple[RedisStreamsQueue, str]] = contextvars.ContextVar(
    "aragora_current_job"
)


async def report_progress(progress: Any) -> bool:
    """Record JSON ``progress`` of the job the calling handler runs (False outside a job)."""
    current = _current.get(None)
    if current is None:
        return False
    queue, job_id = current
    try:
        return await queue.set_progress(job_id, progress)
    except QueueConnectionError:
        logger.warning("progress not recorded: Redis unreachable", extra={"job_id": job_id})
        return False


class Defer(Exception):
    """Raised by a handler: run the job again after ``seconds``, without using up an attempt."""

    def __init__(self, seconds: float, reason: str = "deferred") -> None:
        super().__init__(reason)
        self.seconds = max(0.0, seconds)


class UnknownJobType(ValueError):
    """No handler is registered for the job's type."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """How one worker process runs."""

    worker_id: str
    #: Queues read by this worker, in the order their jobs are preferred.
    queues: tuple[str, ...] = ("debates",)
    max_concurrent: int = 3
    #: Seconds SIGTERM/stop() waits for in-flight jobs before leaving them for takeover.
    shutdown_timeout: float = 30.0
    #: Exit once the queues are empty (tests, cron-style runs).
    burst: bool = False


@dataclass(slots=True)
class Outcome:
    """The end of one attempt, waiting to be written in the next batch."""

    job: Job
    row: tuple[str, str, str, int]
    kind: str
    duration: float
    error: BaseException | None


class BaseWorker:
    """Run jobs from Redis Streams with handlers chosen by job type."""

    def __init__(
        self,
        queue: RedisStreamsQueue,
        handlers: Mapping[str, Handler],
        options: WorkerOptions,
        *,
        retry_policy: RetryPolicy | None = None,
        middleware: MiddlewareChain | None = None,
        registry: WorkerRegistry | None = None,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        if options.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.queue = queue
        self.options = options
        self.retry_policy = retry_policy or queue.retry_policy
        self.chain = middleware or MiddlewareChain()
        self.registry = registry
        self._closers = list(closers)
        self._handlers = dict(handlers)
        self._call = self.chain.wrap(self._dispatch)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._outcomes: list[Outcome] = []
        self._flush_wanted = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stop_requested = False
        self._finished = asyncio.Event()
        self._started_at: float | None = None
        self._dead_letters_seen: Counter[str] = Counter(queue.dead_lettered)
        self.outage = Outage(self.chain)
        self.counters = dict.fromkeys(
            ("completed", "failed", "retried", "cancelled", "deferred"), 0
        )

    # -- public API ---------------------------------------------------------------------------

    @property
    def worker_id(self) -> str:
        """Return this worker's id (also its worker_id in job status)."""
        return self.options.worker_id

    @property
    def is_running(self) -> bool:
        """Tell whether ``start()`` is running and no stop was requested."""
        return self._started_at is not None and not self._finished.is_set()

    @property
    def active_jobs(self) -> int:
        """Return how many jobs run right now."""
        return len(self._tasks)

    def get_stats(self) -> dict[str, Any]:
        """Return counters and state for health reports."""
        uptime = time.time() - self._started_at if self._started_at else 0.0
        return {
            "worker_id": self.worker_id,
            "active_jobs": self.active_jobs,
            "jobs_processed": self.counters["completed"],
            "jobs_failed": self.counters["failed"],
            "jobs_retried": self.counters["retried"],
            "jobs_cancelled": self.counters["cancelled"],
            "uptime_seconds": round(uptime, 3),
            "queues": list(self.options.queues),
            "max_concurrent": self.options.max_concurrent,
        }

    def info(self) -> dict[str, Any]:
        """Return the registration record of this worker."""
        return {
            **self.get_stats(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self._started_at,
        }

    async def start(self) -> None:
        """Run until ``stop()`` (or, in burst mode, until the queues are empty), then drain."""
        self._started_at = time.time()
        self._finished.clear()
        maintenance = Maintenance(self)
        flusher = asyncio.create_task(self._flush_loop(), name=f"{self.worker_id}-flush")
        self.chain.emit("on_worker_start", self)
        try:
            await maintenance.start()
            await self._read_loop()
        finally:
            await asyncio.shield(self._drain(maintenance, flusher))

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop reading, wait ``timeout`` s for in-flight jobs, leave the rest for takeover."""
        self.options = replace(self.options, shutdown_timeout=timeout)
        self.request_stop()
        if self._started_at is not None:
            await self._finished.wait()

    def request_stop(self) -> None:
        """Ask the read loop to stop (signal-handler safe)."""
        self._stop_requested = True
        self._slot_freed.set()

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: graceful stop. Second: exit at once."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def cancel_lost(self, job_ids: list[str]) -> None:
        """Cancel tasks whose delivery is no longer ours (job cancelled or taken over)."""
        for job_id in job_ids:
            task = self._tasks.get(job_id)
            if task is not None:
                self._lost.add(job_id)
                task.cancel()

    # -- reading ------------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if self._stop_requested:
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        logger.info("%s: finishing in-flight jobs", signal.Signals(signum).name)
        self.request_stop()

    async def _read_loop(self) -> None:
        block_ms = min(self.queue.config.worker_block_ms, 1000)
        while not self._stop_requested:
            free = self.options.max_concurrent - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                jobs = await self.queue.dequeue_many(
                    self.worker_id, free, block_ms, self.options.queues
                )
            except QueueConnectionError as error:
                await self.outage.wait(error)
                continue
            self.outage.recovered()
            self._report_dead_letters()
            for job in jobs:
                self._spawn(job)
            if not jobs and self.options.burst and await self._queues_empty():
                return

    def _report_dead_letters(self) -> None:
        for queue, total in self.queue.dead_lettered.items():
            count = total - self._dead_letters_seen[queue]
            if count:
                self._dead_letters_seen[queue] = total
                self.chain.emit("on_dead_letter", count, queue)

    async def _queues_empty(self) -> bool:
        if self._tasks or self._outcomes or self.queue.running:
            return False
        for name in self.options.queues:
            stats = await self.queue.get_queue_stats(name)
            if stats["pending"] or stats["retrying"] or stats["processing"]:
                return False
        return True

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._process(job))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._task_done(job.id))

    def _task_done(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._slot_freed.set()

    # -- running one job ----------------------------------------------------------------------

    async def _dispatch(self, job: Job) -> Any:
        handler = self._handlers.get(job.job_type)
        if handler is None:
            raise UnknownJobType(f"unknown job type {job.job_type!r}")
        timeout = _timeout_of(job)
        if timeout is None:
            return await handler(job)
        async with asyncio.timeout(timeout):
            return await handler(job)

    async def _process(self, job: Job) -> None:
        _current.set((self.queue, job.id))
        started = time.perf_counter()
        try:
            result = await self._call(job)
            row = (job.id, "completed", json.dumps(result, separators=(",", ":")), 0)
            outcome = Outcome(job, row, "completed", 0.0, None)
        except asyncio.CancelledError:
            self._forget(job, time.perf_counter() - started)
            return
        except Defer as defer:
            row = (job.id, "defer", str(defer), round(defer.seconds * 1000))
            outcome = Outcome(job, row, "deferred", 0.0, None)
        except Exception as error:
            outcome = self._failure(job, error)
        outcome.duration = time.perf_counter() - started
        self._outcomes.append(outcome)
        self._flush_wanted.set()

    def _failure(self, job: Job, error: Exception) -> Outcome:
        policy = replace(self.retry_policy, max_attempts=job.max_attempts)
        message = f"{type(error).__name__}: {error}"
        if policy.should_retry(job.attempts, error):
            delay_ms = round(policy.get_delay(job.attempts - 1) * 1000)
            return Outcome(job, (job.id, "retry", message, delay_ms), "retried", 0.0, error)
        return Outcome(job, (job.id, "failed", message, 0), "failed", 0.0, error)

    def _forget(self, job: Job, duration: float) -> None:
        """A cancelled task records nothing: the job was cancelled, or is left for takeover."""
        kind = "cancelled" if job.id in self._lost else "abandoned"
        self._lost.discard(job.id)
        if kind == "cancelled":
            self.counters["cancelled"] += 1
        self.chain.emit("on_outcome", job, kind, duration, None)

    # -- writing outcomes ---------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Write every buffered outcome in one batch; keep them on a Redis outage."""
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                written = await self.queue.finish_many([o.row for o in batch])
            except QueueConnectionError as error:
                self._outcomes = batch + self._outcomes
                await self.outage.wait(error)
                continue
            self.outage.recovered()
            for outcome, ok in zip(batch, written, strict=True):
                self._report(outcome, ok)

    def _report(self, outcome: Outcome, written: bool) -> None:
        if not written:
            extra = log_extra(outcome.job, "job.fenced")
            logger.warning("outcome discarded: job was cancelled or taken over", extra=extra)
            return
        self.counters[outcome.kind] += 1
        self.chain.emit("on_outcome", outcome.job, outcome.kind, outcome.duration, outcome.error)

    # -- stopping -----------------------------------------------------------------------------

    async def _drain(self, maintenance: Maintenance, flusher: asyncio.Task[None]) -> None:
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush(), timeout=max(self.options.shutdown_timeout, 1))
        except TimeoutError:
            unwritten = len(self._outcomes)
            logger.error("Redis unreachable at shutdown: %d outcomes not written", unwritten)
        await maintenance.stop()
        for close in self._closers:
            await close()
        self.chain.emit("on_worker_stop", self)
        self._finished.set()


def _timeout_of(job: Job) -> float | None:
    value = job.payload.get("timeout_seconds") or job.metadata.get("timeout_seconds")
    return float(value) if value else None
