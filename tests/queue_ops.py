"""Test helpers that act as a worker would: take due jobs and record their outcome."""

from __future__ import annotations

import asyncio
import time

from queue_app.queue import Job, RedisStreamsQueue, create_redis_queue, get_queue_config


def process_jobs(outcome: str, *, count: int = 100, queue: str = "debates") -> list[str]:
    """Take up to ``count`` due jobs of ``queue`` and finish each as ``completed``/``failed``.

    Returns the ids of the jobs taken. Uses the installed queue config (the private Redis).
    """
    return asyncio.run(_process(outcome, count, queue))


async def _process(outcome: str, count: int, queue_name: str) -> list[str]:
    queue = await create_redis_queue(config=get_queue_config(), consumer_name="test-worker")
    try:
        jobs = await take(queue, count, queue_name)
        for job in jobs:
            if outcome == "completed":
                await queue.complete(job.id, {"answer": 42})
            else:
                await queue.fail(job.id, "boom: the agent crashed")
        return [job.id for job in jobs]
    finally:
        await queue.close()


async def take(queue: RedisStreamsQueue, count: int, queue_name: str = "debates") -> list[Job]:
    """Start up to ``count`` of the jobs waiting in the stream, within a few seconds.

    A read may return fewer jobs than are due (or none, right after Redis reloaded its
    scripts), so this reads until it has them all or the deadline passes.
    """
    stats = await queue.get_queue_stats(queue_name)
    want = min(count, stats["stream_length"] - stats["pending_in_group"])
    jobs: list[Job] = []
    deadline = time.monotonic() + 5
    while len(jobs) < want and time.monotonic() < deadline:
        jobs += await queue.dequeue_many(
            "test-worker", want - len(jobs), timeout_ms=100, queue_names=[queue_name]
        )
    return jobs
