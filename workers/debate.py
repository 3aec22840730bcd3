"""DebateWorker: runs debate jobs with a pluggable executor."""

from __future__ import annotations

from typing import Any

from queue_app.queue import Job, RetryPolicy
from queue_app.queue.payloads import DEBATE_JOB_TYPE
from queue_app.queue.redis import RedisStreamsQueue, WorkerRegistry

from .executor import DebateExecutor, load_executor
from .middleware import MiddlewareChain
from .runtime import BaseWorker, KindOptions, WorkerKind, WorkerOptions


class DebateWorker(BaseWorker):
    """Worker for the ``debates`` queue: each job runs ``executor(job)``."""

    def __init__(
        self,
        queue: RedisStreamsQueue,
        worker_id: str,
        executor: DebateExecutor,
        max_concurrent: int = 3,
        retry_policy: RetryPolicy | None = None,
        *,
        queues: tuple[str, ...] = ("debates",),
        middleware: MiddlewareChain | None = None,
        registry: WorkerRegistry | None = None,
        shutdown_timeout: float = 30.0,
        burst: bool = False,
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
        )

    async def run_debate(self, job: Job) -> dict[str, Any]:
        """Run the executor and return the result as JSON data."""
        result = await self.executor(job)
        return result.to_dict()


async def debate_kind(options: KindOptions) -> WorkerKind:
    """Build the debate handler around the executor of ``options`` (the default one if unset)."""
    executor = await load_executor(options.executor_path)

    async def run_debate(job: Job) -> dict[str, Any]:
        return (await executor(job)).to_dict()

    aclose = getattr(executor, "aclose", None)
    return WorkerKind({DEBATE_JOB_TYPE: run_debate}, (aclose,) if aclose else ())
