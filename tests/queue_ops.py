"""Test helpers that act as a worker and a ledger writer would, against the private Redis."""

from __future__ import annotations

import asyncio
import time

from queue_app.queue import Job, RedisStreamsQueue, create_redis_queue, get_queue_config
from queue_app.queue.redis import LedgerEvent, LedgerReader
from queue_app.stores.ledger_writer import store_events


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


def start_jobs(count: int, queue: str = "debates") -> list[str]:
    """Take up to ``count`` due jobs and leave them running; return their ids."""
    return asyncio.run(_start(count, queue))


async def _start(count: int, queue_name: str) -> list[str]:
    queue = await create_redis_queue(config=get_queue_config(), consumer_name="test-worker")
    try:
        return [job.id for job in await take(queue, count, queue_name)]
    finally:
        await queue.close()


def drain_ledger() -> int:
    """Store every waiting ledger event in this thread's database connection; return how many.

    Unlike ``LedgerWriter`` (whose database work runs in asgiref's thread), this suits tests in
    a rolled-back transaction.
    """
    events = asyncio.run(_ledger("read"))
    store_events(events)
    asyncio.run(_ledger("ack", events))
    return len(events)


async def _ledger(action: str, events: list[LedgerEvent] | None = None) -> list[LedgerEvent]:
    queue = await create_redis_queue(config=get_queue_config(), consumer_name="test-ledger")
    reader = LedgerReader(queue.redis, "test-ledger", queue.config)
    try:
        if action == "ack":
            await reader.ack(events or [])
            return []
        return await reader.read(count=10_000, block_ms=10)
    finally:
        await queue.close()
