"""Show that Redis memory returns to its baseline once finished jobs pass their retention.

Runs 100,000 jobs (``python bench/redis_memory.py [jobs]``) on three priorities through a
private redis-server, 1 in 10 failed (dead-lettered), with a retention of 120 s
(``QueueConfig.retention_seconds``; longer than the run, so that the peak holds every job),
drains the ledger as ``queue_ledger`` would, then promotes (which prunes indexes, dead letters
and empty priority streams) until no job key is left. Prints ``used_memory`` and the key count
at the baseline, at the peak and after the retention.
"""

from __future__ import annotations

import asyncio
import sys
import time

from _redis import private_redis

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue, create_redis_queue
from queue_app.queue.redis import LedgerReader

RETENTION_SECONDS = 120
PRIORITIES = (0, 4, -3)


async def run_jobs(queue: RedisStreamsQueue, reader: LedgerReader, count: int) -> None:
    """Enqueue, run and finish ``count`` jobs, then store their ledger events."""
    for index, priority in enumerate(PRIORITIES):
        jobs = [Job(payload={"question": "x" * 200, "i": i}) for i in range(index, count, 3)]
        await queue.enqueue_many(jobs, priority=priority)
    while taken := await queue.dequeue_many("bench", 500, timeout_ms=100):
        await queue.finish_many(
            [
                (job.id, "", "failed" if n % 10 == 0 else "completed", '{"ok":true}', 0)
                for n, job in enumerate(taken)
            ]
        )
    while events := await reader.read(count=5000, block_ms=10):
        await reader.ack(events)


async def settle(queue: RedisStreamsQueue) -> float:
    """Promote until no job hash and no extra priority stream is left; return the seconds."""
    started = time.perf_counter()
    while True:
        await queue.promote(["debates"])
        jobs_left = [key async for key in queue.redis.scan_iter("*:job:*", count=10_000)]
        if not jobs_left and await queue.redis.zcard("aragora:queue:debates:levels") == 1:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)


async def report(queue: RedisStreamsQueue, label: str) -> None:
    memory = await queue.redis.info("memory")
    keys = await queue.redis.dbsize()
    minutes = len([key async for key in queue.redis.scan_iter("*:m:*")])
    print(
        f"{label:44s} used_memory {memory['used_memory']:>12,} B"
        f"  dataset {memory['used_memory_dataset']:>12,} B  keys {keys:>7,}"
        f" (per-minute counters {minutes})"
    )


async def measure(url: str, count: int) -> None:
    config = QueueConfig(redis_url=url, retention_seconds=RETENTION_SECONDS)
    queue = await create_redis_queue(consumer_name="bench", config=config)
    reader = LedgerReader(queue.redis, "bench-ledger", config)
    await run_jobs(queue, reader, 30)
    await settle(queue)
    await report(queue, "baseline (after 30 jobs, retention passed)")
    started = time.perf_counter()
    await run_jobs(queue, reader, count)
    elapsed = time.perf_counter() - started
    print(f"{count:,} jobs run and their ledger drained in {elapsed:.1f} s")
    expired = sum(queue.dead_lettered.values())
    print(f"jobs whose data expired before they ran: {expired}")
    await report(queue, f"peak (after {count:,} jobs)")
    waited = await settle(queue)
    await report(queue, f"after retention ({RETENTION_SECONDS} s, settled in {waited:.1f} s)")
    await queue.close()


if __name__ == "__main__":
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with private_redis() as redis_url:
        asyncio.run(measure(redis_url, jobs))
