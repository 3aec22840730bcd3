"""This project's library: the benchmark job, its producers, and the worker process.

``python -m peers.project_app --concurrency N [--production]`` runs a ``BaseWorker`` subclass
on the default queue until SIGTERM; ``--production`` adds the middleware ``queue_worker`` uses
(tracing, logging, metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from peers import shape
from queue_app.queue import Job, QueueConfig, RedisStreamsQueue, create_redis_queue
from workers import BaseWorker, LoggingMiddleware, MiddlewareChain, TracingMiddleware, WorkerOptions
from workers.metrics import MetricsMiddleware

JOB_TYPE = "bench"


def bench_job(sent: float) -> Job:
    """Return one benchmark job."""
    return Job(payload={"sent": sent}, metadata={"job_type": JOB_TYPE})


async def handle(job: Job) -> None:
    """Do the benchmark job's work."""
    await shape.arecord(job.payload["sent"])


class BenchWorker(BaseWorker):
    """A worker kind whose only job type is the benchmark job."""

    def __init__(self, queue: RedisStreamsQueue, concurrency: int, chain: MiddlewareChain):
        options = WorkerOptions(worker_id=f"bench-{os.getpid()}", max_concurrent=concurrency)
        super().__init__(queue, {JOB_TYPE: handle}, options, middleware=chain)


async def connect(name: str) -> RedisStreamsQueue:
    """Return a queue on the run's Redis."""
    return await create_redis_queue(
        consumer_name=name, config=QueueConfig(redis_url=shape.redis_url())
    )


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``JobQueue.enqueue``."""
    queue = await connect("bench-producer")

    async def enqueue(sent: float) -> None:
        await queue.enqueue(bench_job(sent))

    try:
        yield enqueue
    finally:
        await queue.close()


async def enqueue_many(count: int) -> None:
    """Enqueue ``count`` jobs with one ``enqueue_many`` call."""
    queue = await connect("bench-producer")
    try:
        await queue.enqueue_many([bench_job(0.0) for _ in range(count)])
    finally:
        await queue.close()


async def work(concurrency: int, production: bool) -> None:
    """Run the benchmark worker until SIGTERM."""
    middleware = [TracingMiddleware(), LoggingMiddleware(), MetricsMiddleware()]
    chain = MiddlewareChain(middleware if production else [])
    worker = BenchWorker(await connect(f"bench-{os.getpid()}"), concurrency, chain)
    worker.install_signal_handlers()
    await worker.start()


def main() -> None:
    """Parse the worker's flags and run it."""
    parser = argparse.ArgumentParser(description=__doc__)
    default = WorkerOptions(worker_id="default").max_concurrent
    parser.add_argument("--concurrency", type=int, default=default)
    parser.add_argument("--production", action="store_true")
    args = parser.parse_args()
    asyncio.run(work(args.concurrency, args.production))


if __name__ == "__main__":
    main()
