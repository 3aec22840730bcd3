"""Measure one library worker (``BaseWorker``): jobs/s at several concurrencies, pickup latency.

Each job makes one Redis round trip (a PING on its own client), as the task benchmark's task
does. "production middleware" is the chain ``queue_worker`` builds (``wiring.worker_middleware``:
tracing, logging at INFO, metrics, origin routing). Pickup latency: jobs enqueued one at a time
at 100 jobs/s into an idle worker; the time from before ``enqueue`` to the handler's start.
Jobs that wait 20 ms after their PING stand for I/O-bound kinds (webhook deliveries, agent
calls): jobs/s and CPU time per job (``time.process_time``, worker and Redis client) by
concurrency show where a kind's default concurrency stops paying.

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
import redis.asyncio
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
    if WAIT[0]:
        await asyncio.sleep(WAIT[0])


#: Seconds each job waits after its PING (an HTTP call, an agent's answer); 0: none.
WAIT = [0.0]
#: CPU µs per job of the last ``throughput`` run (this process: worker and Redis client).
CPU_PER_JOB = [0.0]


async def throughput(
    url: str, concurrency: int, chain: MiddlewareChain, jobs: int = JOBS, quiet: bool = False
) -> float:
    config = QueueConfig(redis_url=url)
    producer = await create_redis_queue(consumer_name="producer", config=config)
    await producer.redis.flushall()
    producer._known_queues.clear()
    await producer.enqueue_many(
        [Job(payload={"i": i}, metadata={"job_type": "noop"}) for i in range(jobs)]
    )
    queue = await create_redis_queue(consumer_name=f"bench-{concurrency}", config=config)
    # The jobs' own client: a pool as large as the jobs running at once (the queue's client has
    # a bounded one, which 100 jobs at once would exhaust).
    PROBE[:] = [redis.asyncio.Redis.from_url(url)]
    options = WorkerOptions(worker_id="bench", max_concurrent=concurrency, burst=True)
    worker = BaseWorker(queue, {"noop": noop}, options, middleware=chain)
    SENT.clear()
    started, cpu = time.perf_counter(), time.process_time()
    await worker.start()
    elapsed = time.perf_counter() - started
    CPU_PER_JOB[0] = (time.process_time() - cpu) / jobs * 1e6
    assert worker.counters["completed"] == jobs, worker.counters
    if not quiet:
        trips = sum(SENT.values()) / jobs
        print(f"  concurrency {concurrency}: {trips:.2f} Redis round trips per job (worker side)")
    await queue.close()
    await producer.close()
    await PROBE[0].aclose()
    return jobs / elapsed


async def waiting_jobs(url: str, chain: MiddlewareChain) -> None:
    """Print jobs/s and CPU per job of jobs that wait 20 ms, by concurrency (I/O-bound kinds)."""
    WAIT[0] = 0.02
    try:
        for concurrency in (1, 3, 10, 30, 100):
            jobs = max(100, concurrency * 20)
            rate = await throughput(url, concurrency, chain, jobs, quiet=True)
            print(
                f"jobs waiting 20 ms, production middleware, concurrency {concurrency:3d}:"
                f" {rate:8,.0f} jobs/s, {CPU_PER_JOB[0]:5.0f} µs CPU/job"
            )
    finally:
        WAIT[0] = 0.0


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
    chain = production_chain()
    rate = await throughput(url, 100, chain)
    print(f"jobs/s, concurrency 100, production middleware: {rate:10,.0f}")
    await waiting_jobs(url, chain)
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
