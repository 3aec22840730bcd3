"""BaseWorker: read loop, bounded concurrency, job timeouts and graceful drain.

Outcomes are written by ``OutcomeWriter`` and the background loops run in ``Maintenance``;
the worker reads, dispatches each job to the handler of its type through the middleware
chain, and turns what the handler did into an ``Outcome``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from queue_app.queue import Job, JobQueue, QueueConnectionError, QueueError, RetryPolicy

from .backoff import Outage
from .maintenance import Maintenance, Registry
from .middleware import MiddlewareChain
from .outcomes import Outcome, OutcomeWriter
from .progress import bind_job

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[Any]]

#: Seconds the read loop pauses while outcomes cannot be written (back-pressure).
WRITE_STALL_PAUSE_SECONDS = 0.2
#: Longest wait for a job in burst mode, before checking whether the queues are empty.
BURST_BLOCK_MS = 500


class Defer(Exception):
    """Raised by a handler: run the job again after ``seconds``, without using up an attempt."""

    def __init__(self, seconds: float, reason: str = "deferred") -> None:
        super().__init__(reason)
        self.seconds = max(0.0, seconds)


class UnknownJobType(ValueError):
    """No handler is registered for the job's type."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """How one worker runs."""

    worker_id: str
    #: Queues read by this worker, in the order their jobs are preferred.
    queues: tuple[str, ...] = ("debates",)
    #: Jobs run at once; None: the worker kind's ``DEFAULT_CONCURRENCY``.
    max_concurrent: int | None = None
    #: Seconds SIGTERM/stop() waits for in-flight jobs before leaving them for takeover.
    shutdown_timeout: float = 30.0
    #: Exit once the queues are empty (tests, cron-style runs).
    burst: bool = False


class BaseWorker:
    """Run jobs from the queue with handlers chosen by job type."""

    #: The queue a worker kind reads by default (subclasses set it).
    QUEUE_NAME: ClassVar[str] = "debates"
    #: Jobs run at once when the options name no number (``queue_worker`` without
    #: ``--concurrency``); each kind sets its own (README, "Concurrency of each kind").
    DEFAULT_CONCURRENCY: ClassVar[int] = 3

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        options: WorkerOptions,
        *,
        retry_policy: RetryPolicy | None = None,
        middleware: MiddlewareChain | None = None,
        registry: Registry | None = None,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        #: Jobs run at once.
        self.max_concurrent = self.concurrency(options)
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.queue = queue
        self.options = replace(options, max_concurrent=self.max_concurrent)
        self.retry_policy = retry_policy or queue.retry_policy
        self.chain = middleware or MiddlewareChain()
        self.registry = registry
        self.outage = Outage(self.chain)
        self.outcomes = OutcomeWriter(queue, self.chain, self.outage)
        self._closers = list(closers)
        self._handlers = dict(handlers)
        self._call = self.chain.wrap(self._dispatch)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._slot_freed = asyncio.Event()
        self._holding = False
        self._stop_requested = False
        self._finished = asyncio.Event()
        self._started_at: float | None = None
        self._dead_letters_seen: Counter[str] = Counter(queue.dead_lettered)

    # -- public API ---------------------------------------------------------------------------

    @classmethod
    def concurrency(cls, options: WorkerOptions) -> int:
        """Return the jobs run at once under ``options``: theirs, else the kind's default."""
        if options.max_concurrent is None:
            return cls.DEFAULT_CONCURRENCY
        return options.max_concurrent

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

    @property
    def counters(self) -> dict[str, int]:
        """Return the written outcomes of this worker by kind."""
        return self.outcomes.counters

    def get_stats(self) -> dict[str, Any]:
        """Return counters and state for health reports."""
        uptime = time.time() - self._started_at if self._started_at else 0.0
        return {
            "worker_id": self.worker_id,
            "is_running": self.is_running,
            "active_jobs": self.active_jobs,
            "jobs_processed": self.counters["completed"],
            "jobs_failed": self.counters["failed"],
            "jobs_retried": self.counters["retried"],
            "jobs_cancelled": self.counters["cancelled"],
            "uptime_seconds": round(uptime, 3),
            "queues": list(self.options.queues),
            "max_concurrent": self.max_concurrent,
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
        maintenance = Maintenance(
            self.queue,
            self.options.queues,
            self.chain,
            on_lost=self.cancel_lost,
            describe=self.info,
            free_slots=self._free_slots,
            registry=self.registry,
        )
        writer = asyncio.create_task(self.outcomes.run(), name=f"{self.worker_id}-outcomes")
        self.chain.emit("on_worker_start", self)
        try:
            await maintenance.start()
            await self._read_loop()
        finally:
            await asyncio.shield(self._drain(maintenance, writer))

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
        self.queue.wake()

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: graceful stop. Second: exit at once."""
        install_signal_handlers(self.request_stop)

    def cancel_lost(self, job_ids: list[str]) -> None:
        """Cancel tasks whose delivery is no longer ours (job cancelled or taken over)."""
        for job_id in job_ids:
            task = self._tasks.get(job_id)
            if task is not None:
                self._lost.add(job_id)
                task.cancel()

    # -- reading ------------------------------------------------------------------------------

    def _free_slots(self) -> int:
        return self.max_concurrent - len(self._tasks)

    async def _read_loop(self) -> None:
        try:
            await self._read_until_stopped()
        finally:
            self.outcomes.give_back(self.outcomes.take_held())

    async def _read_until_stopped(self) -> None:
        while not self._stop_requested:
            free = self.max_concurrent - len(self._tasks)
            if free <= 0:
                await self._wait_for_slot()
                continue
            if self.outcomes.failing:  # back-pressure: take no job whose outcome could not land
                self.outcomes.give_back(self.outcomes.take_held())
                await asyncio.sleep(WRITE_STALL_PAUSE_SECONDS)
                continue
            jobs = await self._take(free)
            for job in jobs or ():
                self._spawn(job)
            if jobs == [] and self.options.burst and await self._queues_empty():
                return

    async def _wait_for_slot(self) -> None:
        """Wait until a job ends. Outcomes held for a take go to the writer first; those of
        jobs ending meanwhile are held for the take that follows (``_ended``)."""
        self.outcomes.give_back(self.outcomes.take_held())
        self._slot_freed.clear()
        self._holding = True
        try:
            await self._slot_freed.wait()
        finally:
            self._holding = False

    async def _take(self, free: int) -> list[Job] | None:
        """Start up to ``free`` jobs, waiting up to the block time; None after a failed call.

        The held outcomes are written in front of a take that does not wait (one round trip),
        and outcomes of jobs ending during it are held for the next; only when it started
        nothing does the worker wait for jobs, its outcomes then going to the writer.
        """
        try:
            jobs = await self._take_now(free)
            if not jobs:
                self.outcomes.give_back(self.outcomes.take_held())
                jobs = await self._take_waiting(free)
        except QueueConnectionError as error:
            await self._take_failed(error)
            return None
        except Exception as error:  # a refusal (OOM, script error): back off, keep reading
            await self._take_failed(QueueError(f"{type(error).__name__}: {error}"))
            return None
        self.outage.recovered()
        self._report_dead_letters()
        return jobs

    async def _take_now(self, free: int) -> list[Job]:
        """Write the held outcomes, then start up to ``free`` jobs without waiting."""
        held = self.outcomes.take_held()
        self._holding = True
        try:
            results, jobs = await self.queue.finish_and_take(
                [outcome.row for outcome in held], self.worker_id, free, self.options.queues
            )
        except BaseException:
            self.outcomes.give_back(held)
            raise
        finally:
            self._holding = False
        self.outcomes.written(held, results)
        return jobs

    async def _take_waiting(self, free: int) -> list[Job]:
        block_ms = BURST_BLOCK_MS if self.options.burst else self.queue.config.worker_block_ms
        return await self.queue.dequeue_many(self.worker_id, free, block_ms, self.options.queues)

    async def _take_failed(self, error: QueueError) -> None:
        self.outcomes.give_back(self.outcomes.take_held())
        await self.outage.wait(error)

    def _report_dead_letters(self) -> None:
        for queue, total in self.queue.dead_lettered.items():
            count = total - self._dead_letters_seen[queue]
            if count:
                self._dead_letters_seen[queue] = total
                self.chain.emit("on_dead_letter", count, queue)

    async def _queues_empty(self) -> bool:
        """Tell whether no job of the queues waits or runs (burst mode's end).

        A failed read answers False after the outage backoff: a burst worker never ends on an
        error with jobs left.
        """
        if self._tasks or self.outcomes.unwritten or self.queue.running:
            return False
        for name in self.options.queues:
            try:
                stats = await self.queue.get_queue_stats(name)
            except QueueError as error:
                await self.outage.wait(error)
                return False
            if stats["pending"] or stats["retrying"] or stats["processing"]:
                return False
        return True

    def _spawn(self, job: Job) -> None:
        # Eager: the handler runs now up to its first await (its first Redis call is sent before
        # the read loop's next take), not one event-loop turn later.
        task = asyncio.eager_task_factory(asyncio.get_running_loop(), self._process(job))
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
        bind_job(self.queue, job.id)
        started = time.perf_counter()
        self.chain.emit("on_start", job)
        try:
            result = await self._call(job)
            outcome = _outcome(job, "completed", _result_json(result))
        except asyncio.CancelledError:
            self._forget(job, time.perf_counter() - started)
            return
        except Defer as defer:
            outcome = _outcome(job, "defer", str(defer), round(defer.seconds * 1000))
        except Exception as error:  # job boundary: any handler error is the job's outcome
            outcome = self._failure(job, error)
        finally:
            self.chain.emit("on_end", job)
        outcome.duration = time.perf_counter() - started
        self._ended(outcome)

    def _ended(self, outcome: Outcome) -> None:
        """Have ``outcome`` written: by the read loop's take when it waits for this slot (one
        round trip for both), else by the outcome writer."""
        if self._holding and not self.outcomes.failing:
            self.outcomes.hold(outcome)
        else:
            self.outcomes.add(outcome)

    def _failure(self, job: Job, error: Exception) -> Outcome:
        policy = replace(self.retry_policy, max_attempts=job.max_attempts)
        message = f"{type(error).__name__}: {error}"
        if policy.should_retry(job.attempts, error):
            delay = policy.get_delay(job.attempts - 1)
            # An error may ask for a longer wait (a webhook's Retry-After), within the cap.
            wanted = getattr(error, "retry_after", None)
            if isinstance(wanted, int | float) and wanted > delay:
                delay = min(float(wanted), policy.max_delay_seconds)
            return _outcome(job, "retry", message, round(delay * 1000), error)
        return _outcome(job, "failed", message, 0, error)

    def _forget(self, job: Job, duration: float) -> None:
        """A cancelled task records nothing: the job was cancelled, or is left for takeover."""
        kind = "cancelled" if job.id in self._lost else "abandoned"
        self._lost.discard(job.id)
        if kind == "cancelled":
            self.counters["cancelled"] += 1
        self.chain.emit("on_outcome", job, kind, duration, None)

    # -- stopping -----------------------------------------------------------------------------

    async def _drain(self, maintenance: Maintenance, writer: asyncio.Task[None]) -> None:
        """Finish or abandon running jobs, write the last outcomes, release everything.

        ``_finished`` is set whatever fails here, so that ``stop()`` always returns.
        """
        try:
            tasks = list(self._tasks.values())
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=self.options.shutdown_timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            await self.outcomes.close(writer, max(self.options.shutdown_timeout, 1.0))
            await maintenance.stop(self.worker_id)
            await self._close_all()
            self.chain.emit("on_worker_stop", self)
        finally:
            self._finished.set()

    async def _close_all(self) -> None:
        for close in self._closers:
            try:
                await close()
            except Exception:  # one failing closer must not keep the others open
                logger.exception("closing %r failed", close)


def install_signal_handlers(request_stop: Callable[[], None]) -> None:
    """First SIGTERM/SIGINT calls ``request_stop`` (graceful stop); a second exits at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if received:
            logger.warning("second %s: exiting now", name)
            os._exit(1)
        received.append(signum)
        logger.info("%s: finishing in-flight jobs", name)
        request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


#: Outcome names of ``finish_many`` -> the names ``on_outcome`` and the counters use.
OUTCOME_KINDS = {
    "completed": "completed",
    "defer": "deferred",
    "retry": "retried",
    "failed": "failed",
}


def _outcome(
    job: Job, name: str, data: str, delay_ms: int = 0, error: Exception | None = None
) -> Outcome:
    """Return the outcome of an attempt, written under the token of the job's delivery."""
    row = (job.id, job.delivery_token or "", name, data, delay_ms)
    return Outcome(job, row, OUTCOME_KINDS[name], 0.0, error)


def _result_json(result: Any) -> str:
    """Return the JSON of a handler's result (most handlers return None)."""
    return "null" if result is None else json.dumps(result, separators=(",", ":"))


def _timeout_of(job: Job) -> float | None:
    value = job.payload.get("timeout_seconds") or job.metadata.get("timeout_seconds")
    return float(value) if value else None
