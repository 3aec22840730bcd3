"""Measure what replica confirmations (``enqueue_replicas=1``: WAIT) cost an enqueue.

A private master with one replica (WAIT timeout 1 s: a loaded machine can miss 100 ms); rounds
alternate without and with WAIT (A, B, A, B, ...) so that the noise of a shared machine falls on
both. Prints enqueues/s, one by one and bulk, and the median ratio of paired rounds.
Usage: bench/enqueue_replicas.py [rounds]
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import redis
from _redis import _free_port, private_redis

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue

ONE_BY_ONE = 2000
BULK = 20_000


@contextlib.contextmanager
def replica_of(master_url: str) -> Iterator[None]:
    """Run a replica of the master at ``master_url`` until the block ends."""
    master_port = int(master_url.rsplit(":", 1)[1].split("/")[0])
    redis.Redis(port=master_port).config_set("repl-diskless-sync-delay", 0)
    port, workdir = _free_port(), tempfile.mkdtemp(prefix="bench-replica-")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--replicaof", "127.0.0.1", str(master_port), "--dir", workdir]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        with redis.Redis(port=master_port) as client:
            client.set("bench:probe", 1)
            while client.wait(1, 1000) < 1:
                client.set("bench:probe", 1)
        yield
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def rates(url: str, replicas: int) -> tuple[float, float]:
    """Return (one-by-one, bulk) enqueues per second with ``replicas`` confirmations."""
    queue = RedisStreamsQueue.from_config(
        QueueConfig(redis_url=url, enqueue_replicas=replicas, enqueue_wait_ms=1000), "bench"
    )
    await queue.enqueue(Job(payload={}))  # the queue and its script, loaded
    started = time.perf_counter()
    for i in range(ONE_BY_ONE):
        await queue.enqueue(Job(payload={"i": i}))
    one = ONE_BY_ONE / (time.perf_counter() - started)
    started = time.perf_counter()
    await queue.enqueue_many([Job(payload={"i": i}) for i in range(BULK)])
    bulk = BULK / (time.perf_counter() - started)
    await queue.redis.flushall()
    await queue.close()
    return one, bulk


async def measure(url: str, rounds: int) -> None:
    results: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for _ in range(rounds):
        for replicas in (0, 1):
            results[replicas].append(await rates(url, replicas))
    for replicas, runs in results.items():
        one = statistics.median(run[0] for run in runs)
        bulk = statistics.median(run[1] for run in runs)
        print(
            f"enqueue_replicas={replicas}: one by one {one:8,.0f}/s, "
            f"bulk {bulk:8,.0f}/s (median of {rounds})"
        )
    ratio = statistics.median(r[0] / w[0] for w, r in zip(results[0], results[1], strict=True))
    print(f"one by one, with WAIT / without: {ratio:.2f}")


if __name__ == "__main__":
    with private_redis() as redis_url, replica_of(redis_url):
        asyncio.run(measure(redis_url, int(sys.argv[1]) if len(sys.argv) > 1 else 5))
