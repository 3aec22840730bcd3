"""Measure the queue library alone: enqueue rates and enqueue->dequeue->complete cycles/s."""

from __future__ import annotations

import asyncio
import time

from _redis import private_redis

from queue_app.queue import Job, QueueConfig, create_redis_queue

N = 20_000


async def measure(url: str) -> None:
    queue = await create_redis_queue(consumer_name="bench", config=QueueConfig(redis_url=url))
    started = time.perf_counter()
    for i in range(5000):
        await queue.enqueue(Job(payload={"i": i}))
    report("enqueue one by one", 5000, started)

    started = time.perf_counter()
    await queue.enqueue_many([Job(payload={"i": i}) for i in range(N)])
    report("bulk enqueue (enqueue_many)", N, started)
    await drain(queue)

    started = time.perf_counter()
    for i in range(5000):
        await queue.enqueue(Job(payload={"i": i}))
        job = await queue.dequeue("bench", timeout_ms=1000)
        assert job is not None
        await queue.complete(job.id, None)
    report("enqueue->dequeue->complete cycles, one client", 5000, started)

    await queue.enqueue_many([Job(payload={"i": i}) for i in range(N)])
    started = time.perf_counter()
    done = 0
    while done < N:
        jobs = await queue.dequeue_many("bench", 100, timeout_ms=1000)
        await queue.finish_many(
            [(job.id, job.delivery_token or "", "completed", "null", 0) for job in jobs]
        )
        done += len(jobs)
    report("dequeue_many(100)+finish_many, jobs", N, started)
    await queue.redis.flushall()
    await queue.close()


async def drain(queue) -> None:
    while jobs := await queue.dequeue_many("bench", 500, timeout_ms=0):
        await queue.finish_many(
            [(job.id, job.delivery_token or "", "completed", "null", 0) for job in jobs]
        )


def report(name: str, count: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(f"{name:50s} {count / elapsed:10,.0f} /s  ({count} in {elapsed:.2f} s)")


if __name__ == "__main__":
    with private_redis() as redis_url:
        asyncio.run(measure(redis_url))
