"""DebateWorker: runs debate jobs with a pluggable executor."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar, Unpack

from queue_app.queue import Job, JobQueue, RetryPolicy
from queue_app.queue.payloads import DEBATE_JOB_TYPE

from ..agents import AgentSettings
from ..runtime import Closer, KindContext, KindWorker, RuntimeArguments, WorkerOptions
from .executor import DebateExecutor, load_executor


class DebateWorker(KindWorker):
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
        closers: Sequence[Closer] = (),
        **runtime: Unpack[RuntimeArguments],
    ) -> None:
        self.executor = executor
        super().__init__(
            queue,
            {DEBATE_JOB_TYPE: self.run_debate},
            worker_id,
            max_concurrent,
            retry_policy=retry_policy,
            closers=closers,
            **runtime,
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
            closers=(aclose,) if aclose else (),
            **context.runtime_arguments(options),
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
