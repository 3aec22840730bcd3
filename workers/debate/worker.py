"""DebateWorker: runs debate jobs with a pluggable executor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from queue_app.queue import Job, JobQueue, RetryPolicy
from queue_app.queue.payloads import DEBATE_JOB_TYPE

from ..agents import AgentSettings
from ..runtime import BaseWorker, KindContext, MiddlewareChain, Registry, WorkerOptions
from .executor import DebateExecutor, load_executor


class DebateWorker(BaseWorker):
    """Worker for the ``debates`` queue: each job runs ``executor(job)``."""

    QUEUE_NAME: ClassVar[str] = "debates"
    #: Jobs at once without ``--concurrency`` (README): debates wait on agents, not on the CPU.
    DEFAULT_CONCURRENCY: ClassVar[int] = 10

    def __init__(
        self,
        queue: JobQueue,
        worker_id: str,
        executor: DebateExecutor,
        max_concurrent: int = 3,
        retry_policy: RetryPolicy | None = None,
        *,
        queues: tuple[str, ...] = ("debates",),
        middleware: MiddlewareChain | None = None,
        registry: Registry | None = None,
        shutdown_timeout: float = 30.0,
        burst: bool = False,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.executor = executor
        options = WorkerOptions(
            worker_id=worker_id,
            queues=queues,
            max_concurrent=max_concurrent,
            shutdown_timeout=shutdown_timeout,
            burst=burst,
        )
        super().__init__(
            queue,
            {DEBATE_JOB_TYPE: self.run_debate},
            options,
            retry_policy=retry_policy,
            middleware=middleware,
            registry=registry,
            closers=closers,
        )

    @classmethod
    async def build(
        cls, queue: JobQueue, options: WorkerOptions, context: KindContext
    ) -> DebateWorker:
        """Build the worker around the executor of ``context`` (the default one if unset)."""
        settings = AgentSettings.from_env(context.agent_env)
        executor = await load_executor(context.executor_path, settings)
        aclose = getattr(executor, "aclose", None)
        return cls(
            queue,
            options.worker_id,
            executor,
            cls.concurrency(options),
            queues=options.queues,
            middleware=context.middleware,
            registry=context.registry,
            shutdown_timeout=options.shutdown_timeout,
            burst=options.burst,
            closers=(aclose,) if aclose else (),
        )

    async def run_debate(self, job: Job) -> dict[str, Any]:
        """Run the executor and return the result as JSON data.

        A payload without ``timeout_seconds`` (enqueued before debates had a default) still
        runs at most the config's ``debate_timeout_seconds``.
        """
        if job.payload.get("timeout_seconds"):
            return (await self.executor(job)).to_dict()
        async with asyncio.timeout(self.queue.config.debate_timeout_seconds):
            return (await self.executor(job)).to_dict()
