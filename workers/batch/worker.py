"""BatchExplainabilityWorker: explains many finished debates in one job, item by item.

Each finished item is stored at once as a checkpoint of the job, with the batch's counts as the
job's progress; a delivery taken over after a crash skips the items already explained (failed
items run again). The batch completes with partial results when some items fail, and fails only
when every item failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Unpack

from queue_app.queue import InvalidJob, Job, JobQueue, RetryPolicy, is_retryable_error

from ..agents import AgentPool, AgentSettings
from ..runtime import Closer, KindContext, KindWorker, RuntimeArguments, WorkerOptions
from .explainer import ExplainGenerator, load_explain_generator
from .jobs import BATCH_JOB_TYPE, BATCH_QUEUE, debate_ids_of
from .progress import ERROR, SUCCESS, BatchJobProgress

logger = logging.getLogger(__name__)


class BatchFailed(RuntimeError):
    """Every item of the batch failed, at least one for a reason that may pass (retryable)."""


class BatchRejected(BatchFailed, ValueError):
    """Every item of the batch failed for reasons a new attempt will not change."""


class BatchExplainabilityWorker(KindWorker):
    """Worker for the ``batch_explainability`` queue: each job explains a list of debates."""

    QUEUE_NAME: ClassVar[str] = BATCH_QUEUE
    #: Jobs at once without ``--concurrency`` (README): batches, each of several debates.
    DEFAULT_CONCURRENCY: ClassVar[int] = 2

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        explain_generator: ExplainGenerator,
        max_concurrent_debates: int = 5,
        max_concurrent_batches: int = 2,
        retry_policy: RetryPolicy | None = None,
        *,
        closers: Sequence[Closer] = (),
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        if max_concurrent_debates < 1:
            raise ValueError("max_concurrent_debates must be at least 1")
        self.explain_generator = explain_generator
        self.max_concurrent_debates = max_concurrent_debates
        self._live: dict[str, BatchJobProgress] = {}
        self.debates_processed = 0
        self.debates_failed = 0
        super().__init__(
            queue,
            {BATCH_JOB_TYPE: self.run_batch},
            worker_id,
            max_concurrent_batches,
            retry_policy=retry_policy,
            closers=closers,
            **runtime,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> BatchExplainabilityWorker:
        """Build the worker with the explain generator and debate history of ``context``."""
        pool = AgentPool(AgentSettings.from_env(context.agent_env))
        generator = await load_explain_generator(
            context.explain_generator_path, queue, pool, context.debate_history
        )
        return cls(
            queue,
            options.worker_id,
            generator,
            max_concurrent_batches=cls.concurrency(options),
            closers=(pool.aclose,),
            **context.runtime_arguments(options),
        )

    def get_batch_progress(self, job_id: str) -> BatchJobProgress | None:
        """Return the live progress of a batch this worker runs now (None otherwise).

        Any process reads any batch's stored progress with ``load_batch_progress``.
        """
        return self._live.get(job_id)

    def get_stats(self) -> dict[str, Any]:
        """Return the runtime's statistics plus the reference's batch counters."""
        return {
            **super().get_stats(),
            "batches_processed": self.counters["completed"],
            "debates_processed": self.debates_processed,
            "debates_failed": self.debates_failed,
            "active_batches": len(self._live),
            "queue_name": self.QUEUE_NAME,
        }

    async def run_batch(self, job: Job) -> dict[str, Any]:
        """Explain every debate of the batch not explained yet; return results and errors."""
        debate_ids = debate_ids_of(job.payload.get("debate_ids", []))
        options = job.payload.get("options") or {}
        if not isinstance(options, dict):
            raise InvalidJob("options must be an object")
        progress, todo = await self._resume(job, debate_ids)
        self._live[job.id] = progress
        try:
            await self._explain_all(job.id, todo, options, progress)
        finally:
            self._live.pop(job.id, None)
        if progress.total and not progress.succeeded:
            raise _all_failed(progress)
        return progress.result(debate_ids)

    async def _resume(self, job: Job, debate_ids: list[str]) -> tuple[BatchJobProgress, list[str]]:
        """Count the items a previous delivery explained; return the progress and what is left."""
        stored = await self.queue.get_checkpoints(job.id)
        done = {key: item for key, item in stored.items() if item.get("status") == SUCCESS}
        earlier = BatchJobProgress.from_stored(job.id, job.progress)
        progress = BatchJobProgress(
            job_id=job.id, total=len(debate_ids), started_at=earlier.started_at
        )
        for debate_id in debate_ids:
            if debate_id in done:
                progress.record(done[debate_id])
        if done:
            logger.info("batch %s resumes: %d of %d done", job.id, len(done), len(debate_ids))
        return progress, [debate_id for debate_id in debate_ids if debate_id not in done]

    async def _explain_all(
        self, job_id: str, todo: list[str], options: dict[str, Any], progress: BatchJobProgress
    ) -> None:
        slots = asyncio.Semaphore(self.max_concurrent_debates)
        writing = asyncio.Lock()  # one checkpoint at a time keeps the counts monotonic

        async def one(debate_id: str) -> None:
            async with slots:
                item = await self._explain(debate_id, options)
            async with writing:
                progress.record(item)
                await self.queue.save_checkpoint(job_id, debate_id, item, progress.counts())

        async with asyncio.TaskGroup() as group:
            for debate_id in todo:
                group.create_task(one(debate_id))

    async def _explain(self, debate_id: str, options: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            explanation = await self.explain_generator(debate_id, dict(options))
        except Exception as error:  # item boundary: any failure is this item's error, never lost
            self.debates_failed += 1
            return {
                "debate_id": debate_id,
                "status": ERROR,
                "error": f"{type(error).__name__}: {error}",
                "retryable": is_retryable_error(error),
                "processing_time_ms": _ms_since(started),
            }
        self.debates_processed += 1
        return {
            "debate_id": debate_id,
            "status": SUCCESS,
            "explanation": explanation,
            "processing_time_ms": _ms_since(started),
        }


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _all_failed(progress: BatchJobProgress) -> BatchFailed:
    """Return the error of a batch whose every item failed (retryable if any item may pass)."""
    first = "; ".join(f"{e['debate_id']}: {e['error']}" for e in progress.errors[:3])
    message = f"all {progress.total} items failed ({first})"
    if any(error.get("retryable") for error in progress.errors):
        return BatchFailed(message)
    return BatchRejected(message)
