"""Diagnostics worker kind: ``noop``, ``sleep`` and ``fail`` jobs for smoke tests and benchmarks."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from queue_app.queue import Job, JobQueue

from .runtime import BaseWorker, KindContext, WorkerOptions

#: Queue served by the diagnostics handlers.
DIAGNOSTICS_QUEUE = "diagnostics"


class DiagnosticFailure(RuntimeError):
    """A ``fail`` job failing on purpose (retryable)."""


async def noop(job: Job) -> None:
    """Do nothing (measures the queue itself)."""


async def sleep(job: Job) -> dict[str, Any]:
    """Sleep ``payload["seconds"]`` and echo the payload's ``tag``."""
    await asyncio.sleep(float(job.payload.get("seconds", 1)))
    return {"slept": job.payload.get("seconds", 1), "tag": job.payload.get("tag")}


async def fail(job: Job) -> dict[str, Any]:
    """Fail until attempt ``payload["succeed_on"]`` (never, when unset)."""
    succeed_on = job.payload.get("succeed_on")
    if succeed_on is not None and job.attempts >= int(succeed_on):
        return {"attempts": job.attempts}
    if job.payload.get("permanent"):
        raise ValueError(str(job.payload.get("message", "permanent diagnostic failure")))
    raise DiagnosticFailure(str(job.payload.get("message", "diagnostic failure")))


#: Handlers of the diagnostics queue, by job type.
HANDLERS = {"noop": noop, "sleep": sleep, "fail": fail}


class DiagnosticsWorker(BaseWorker):
    """Worker for the ``diagnostics`` queue: ``noop``, ``sleep`` and ``fail`` jobs."""

    QUEUE_NAME: ClassVar[str] = DIAGNOSTICS_QUEUE
    #: Jobs at once without ``--concurrency`` (README): no-op and sleep jobs.
    DEFAULT_CONCURRENCY: ClassVar[int] = 10

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> DiagnosticsWorker:
        """Build the worker with the production middleware of ``context``."""
        return cls(
            queue, HANDLERS, options, middleware=context.middleware, registry=context.registry
        )
