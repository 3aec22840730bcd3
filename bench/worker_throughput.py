"""Measure one library worker (``BaseWorker``): jobs/s at several concurrencies, pickup latency.

Each job makes one Redis round trip (a PING on its own client), as the task benchmark's task
does. "production middleware" is the chain ``queue_worker`` builds (``wiring.worker_middleware``:
tracing, logging at INFO, metrics, origin routing). Pickup latency: jobs enqueued one at a time
at 100 jobs/s into an idle worker; the time from before ``enqueue`` to the handler's start.

Usage: ``.venv/bin/python bench/worker_throughput.py [redis-url]``; with
``PYTHONPATH=<other checkout>`` it measures that checkout's library.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import django
from _redis import private_redis
from redis.asyncio.connection import AbstractConnection

from queue_app.queue import Job, QueueConfig, create_redis_queue
from workers import BaseWorker, MiddlewareChain, WorkerOptions

JOBS = 10_000
#: Requests written to Redis (a pipeline is one): counts round trips.
SENT: Counter[str] = Counter()
_send = AbstractConnection.send_packed_command


async def _counted_send(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
    SENT["requests"] += 1
    await _send(self, *args, **kwargs)


AbstractConnection.send_packed_command = _counted_send  # type: ignore[method-assign]


PROBE: list[Any] = []


async def noop(job: Job) -> None:
    await PROBE[0].ping()


async def throughput(url: str, concurrency: int, chain: MiddlewareChain) -> float:
    config = QueueConfig(redis_url=url)
    producer = await create_redis_queue(consumer_name="producer", config=config)
    await producer.redis.flushall()
    producer._known_queues.clear()
    await producer.enqueue_many(
        [Job(payload={"i": i}, metadata={"job_type": "noop"}) for i in range(JOBS)]
    )
    queue = await create_redis_queue(consumer_name=f"bench-{concurrency}", config=config)
    PROBE[:] = [producer.redis]
    options = WorkerOptions(worker_id="bench", max_concurrent=concurrency, burst=True)
    worker = BaseWorker(queue, {"noop": noop}, options, middleware=chain)
    SENT.clear()
    started = time.perf_counter()
    await worker.start()
    elapsed = time.perf_counter() - started
    assert worker.counters["completed"] == JOBS, worker.counters
    trips = sum(SENT.values()) / JOBS
    print(f"  concurrency {concurrency}: {trips:.2f} Redis round trips per job (worker side)")
    await queue.close()
    await producer.close()
    return JOBS / elapsed


async def pickup_latency(url: str, samples: int = 500) -> list[float]:
    config = QueueConfig(redis_url=url)
    producer = await create_redis_queue(consumer_name="producer", config=config)
    queue = await create_redis_queue(consumer_name="latency", config=config)
    seen: asyncio.Queue[float] = asyncio.Queue()

    async def handler(job: Job) -> None:
        seen.put_nowait(time.perf_counter())

    options = WorkerOptions(worker_id="latency", max_concurrent=10)
    worker = BaseWorker(queue, {"noop": handler}, options)
    runner = asyncio.create_task(worker.start())
    await asyncio.sleep(0.3)
    latencies = []
    for i in range(samples):
        sent = time.perf_counter()
        await producer.enqueue(Job(payload={"i": i}, metadata={"job_type": "noop"}))
        latencies.append((await seen.get()) - sent)
        await asyncio.sleep(max(0.0, 0.01 - (time.perf_counter() - sent)))
    await worker.stop(5)
    await runner
    await queue.close()
    await producer.close()
    return latencies


def production_chain() -> MiddlewareChain:
    """Return the middleware ``queue_worker`` runs jobs with, logging as it does (INFO)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aragora_site.settings")
    os.environ.setdefault("ARAGORA_SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("ARAGORA_RUN_DIR", tempfile.mkdtemp(prefix="bench-worker-"))
    django.setup()
    from queue_app.wiring import worker_middleware

    return MiddlewareChain(worker_middleware())


async def main(url: str) -> None:
    bare = MiddlewareChain()
    for concurrency in (3, 100):
        rate = await throughput(url, concurrency, bare)
        print(f"jobs/s, 1 process, concurrency {concurrency:3d}: {rate:10,.0f}")
    rate = await throughput(url, 100, production_chain())
    print(f"jobs/s, concurrency 100, production middleware: {rate:10,.0f}")
    latencies = sorted(await pickup_latency(url))
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"pickup latency at 100 jobs/s (enqueue -> handler start): "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )


if __name__ == "__main__":
    with private_redis() as redis_url:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else redis_url))
