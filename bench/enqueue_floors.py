"""Measure what one enqueue round trip can cost at best, beside what it costs now.

One private redis-server; each case runs COUNT calls one after another (each waiting for the
previous one) in a fresh subprocess, cases interleaved over the repetitions; medians printed
with the client's and the server's CPU per call (µs). The cases, sync redis-py then
redis.asyncio:

- ``lpush``: one LPUSH of a 100-byte value (what huey's enqueue sends, pickling aside);
- ``fcall trivial``: FCALL of a function that returns 1, with one key and one argument;
- ``fcall enqueue``: FCALL of the enqueue script with the arguments the library sends;
- ``enqueue()``: the library call itself (``RedisStreamsQueue.enqueue`` / ``SyncEnqueuer``);
- with ``--huey PYTHON`` (an interpreter with huey, e.g. bench-peers' ``.run/peers-venv``):
  huey's whole enqueue (a task call on ``RedisHuey``), the reference of issue 15's targets, in
  the same run as the floors it is compared with.

Usage: .venv/bin/python bench/enqueue_floors.py [--reps 3] [--count 5000] [--huey PYTHON]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from _clock import Clock
from _redis import private_redis
from enqueue_rates import HUEY

CASES = (
    "sync lpush",
    "sync fcall trivial",
    "sync fcall enqueue",
    "sync enqueue()",
    "async lpush",
    "async fcall trivial",
    "async fcall enqueue",
    "async enqueue()",
)
TRIVIAL = (
    "#!lua name=bench_trivial\nredis.register_function('bench_trivial', function() return 1 end)"
)
VALUE = b"x" * 100


def _queue_parts(url: str) -> tuple[Any, Callable[[int], Any]]:
    """Return a library queue (async) and a function making the enqueue script call of job i."""
    from queue_app.queue import Job, QueueConfig
    from queue_app.queue.redis.core import QueueCore
    from queue_app.queue.redis.enqueue import enqueue_call, job_rows

    config = QueueConfig(redis_url=url)
    core = QueueCore(redis.asyncio.Redis.from_url(url), "bench", config)
    queue = config.default_queue

    def call(i: int) -> Any:
        rows = job_rows([Job(payload={"i": i})], queue, 0, 0, config, False)
        return enqueue_call(core, queue, rows, None)

    return core, call


def _sync_ops(case: str, url: str) -> Callable[[int], Any]:
    client = redis.Redis.from_url(url)
    if case == "sync lpush":
        return lambda i: client.lpush("bench:list", VALUE)
    if case == "sync fcall trivial":
        client.function_load(TRIVIAL, replace=True)
        return lambda i: client.fcall("bench_trivial", 1, "bench:k", i)
    from queue_app.queue import Job, QueueConfig, RedisStreamsQueue
    from queue_app.queue.redis import SyncEnqueuer
    from queue_app.queue.redis.scripts import SCRIPTS, load_sync

    if case == "sync fcall enqueue":
        core, make = _queue_parts(url)
        asyncio.run(core.ensure_queue(core.config.default_queue))
        script = SCRIPTS["enqueue"]
        load_sync(client)
        calls = [make(i) for i in range(COUNT)]
        return lambda i: script.run_sync(client, *calls[i])
    queue = RedisStreamsQueue(
        redis.asyncio.Redis.from_url(url), "bench", QueueConfig(redis_url=url)
    )
    enqueuer = SyncEnqueuer(queue, client)
    return lambda i: enqueuer.enqueue_if_new(Job(payload={"i": i}))


async def _async_ops(case: str, url: str) -> Callable[[int], Any]:
    client = redis.asyncio.Redis.from_url(url)
    if case == "async lpush":
        return lambda i: client.lpush("bench:list", VALUE)
    if case == "async fcall trivial":
        await client.function_load(TRIVIAL, replace=True)
        return lambda i: client.fcall("bench_trivial", 1, "bench:k", i)
    from queue_app.queue import Job, QueueConfig, create_redis_queue
    from queue_app.queue.redis.scripts import SCRIPTS, load

    if case == "async fcall enqueue":
        core, make = _queue_parts(url)
        await core.ensure_queue(core.config.default_queue)
        script = SCRIPTS["enqueue"]
        await load(client)
        calls = [make(i) for i in range(COUNT)]
        return lambda i: script(client, *calls[i])
    queue = await create_redis_queue(consumer_name="bench", config=QueueConfig(redis_url=url))
    return lambda i: queue.enqueue(Job(payload={"i": i}))


def run_sync(case: str, url: str) -> str:
    """Time COUNT calls of a sync case after a warm-up."""
    op = _sync_ops(case, url)
    for i in range(200):
        op(i)
    clock = Clock(url)
    before = clock.read()
    for i in range(COUNT):
        op(i)
    return Clock.per_job(before, clock.read(), COUNT)


async def run_async(case: str, url: str) -> str:
    """Time COUNT calls of an asyncio case after a warm-up."""
    op = await _async_ops(case, url)
    for i in range(200):
        await op(i)
    clock = Clock(url)
    before = clock.read()
    for i in range(COUNT):
        await op(i)
    return Clock.per_job(before, clock.read(), COUNT)


COUNT = 5000


def main() -> None:
    """Run every case in turn, ``--reps`` times, and print the medians."""
    global COUNT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--huey", help="an interpreter with huey installed")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    COUNT = args.count
    if args.case:
        sync = args.case.startswith("sync")
        print(
            run_sync(args.case, args.url) if sync else asyncio.run(run_async(args.case, args.url))
        )
        return
    me = [sys.executable, str(Path(__file__).resolve()), "--count", str(COUNT)]
    commands = {case: [*me, "--case", case] for case in CASES}
    if args.huey:
        commands["sync huey enqueue"] = [args.huey, "-c", HUEY, str(COUNT)]
    runs: dict[str, list[list[float]]] = {case: [] for case in commands}
    with private_redis() as url:
        for _ in range(args.reps):
            for case, command in commands.items():
                redis.Redis.from_url(url).flushall()
                done = subprocess.run([*command, url], capture_output=True, text=True, check=True)
                runs[case].append([float(word) for word in done.stdout.split()[-3:]])
    head = f"{'calls/s':>9s} {'wall µs':>8s} {'client':>7s} {'redis':>7s}"
    print(f"{'':24s} {head}  (medians of {args.reps}; CPU µs per call)")
    for case, rows in runs.items():
        wall, client, server = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{case:24s} {1e6 / wall:9,.0f} {wall:8.1f} {client:7.1f} {server:7.1f}")


if __name__ == "__main__":
    main()
