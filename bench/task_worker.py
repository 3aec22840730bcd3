"""Measure ``@task`` jobs on ``manage.py queue_worker``: jobs/s, pickup latency, idle memory.

The task (``bench/_tasks.py``) makes one Redis round trip: it appends the wall time at which it
started to a list. The jobs are those ``RedisStreamsTaskBackend.enqueue`` writes, enqueued in
bulk beforehand; then ``queue_worker --queues tasks --burst`` runs them in a subprocess, as in
production (INFO logs, metrics, tracing and ledger middleware, the ledger drained in-process).

- jobs/s: jobs over the time from the first task start to the last (the process start-up is not
  counted); once with one worker process, once with two running side by side.
- pickup latency: a worker waits idle; jobs are enqueued one at a time at 100 jobs/s and each
  latency is the time from before ``enqueue`` to the task's start.
- idle RSS: the worker's resident memory once started and idle (after one job).

The Django tree measured is the one this interpreter imports ``queue_app`` from, so that
``PYTHONPATH=/tmp/main-tree .venv/bin/python bench/task_worker.py`` measures another checkout.

- ``--sweep 1,10,100``: instead, jobs/s and CPU per job of one worker at each concurrency (0: the
  kind's default), in interleaved rounds. CPU per job is the worker process's CPU time (rusage)
  less that of a worker that starts, finds no job and exits: unlike jobs/s, it holds on a
  loaded machine.

Usage: ``.venv/bin/python bench/task_worker.py [--jobs N] [--concurrency N] [--samples N]
[--extra=--no-ledger] [--sweep 1,10,100 [--rounds N]]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _redis import private_redis
from redis.asyncio import Redis

import queue_app
from queue_app.queue import Job, QueueConfig, create_redis_queue

TREE = Path(queue_app.__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
SEEN = "bench:seen"


def environment(url: str, run_dir: str) -> dict[str, str]:
    """Return the environment of the worker processes (the measured tree first on the path)."""
    return {
        **os.environ,
        "PYTHONPATH": f"{TREE}{os.pathsep}{BENCH}",
        "REDIS_URL": url,
        "ARAGORA_RUN_DIR": run_dir,
        "ARAGORA_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_SETTINGS_MODULE": "aragora_site.settings",
    }


def task_job(key: str) -> Job:
    """Return the job ``RedisStreamsTaskBackend.enqueue`` writes for ``_tasks.touch(key)``."""
    return Job(
        payload={
            "module_path": "_tasks.touch",
            "args": [key],
            "kwargs": {},
            "takes_context": False,
        },
        metadata={"job_type": "django_task", "backend": "default", "queue_name": "default"},
    )


#: More ``queue_worker`` flags (``--extra=--no-ledger``).
EXTRA: list[str] = []
#: CPU seconds of the last runs' worker processes.
CPU: list[float] = []


def worker(env: dict[str, str], concurrency: int, *flags: str) -> subprocess.Popen[bytes]:
    """Start ``queue_worker --queues tasks`` of the measured tree (0: its default concurrency)."""
    args = ["--queues", "tasks", *flags, *EXTRA]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    command = [sys.executable, str(TREE / "manage.py"), "queue_worker", *args]
    return subprocess.Popen(command, env=env, cwd=TREE, stderr=subprocess.DEVNULL)


def _children_cpu() -> float:
    """Return the CPU seconds of the waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def throughput(url: str, env: dict[str, str], jobs: int, processes: int, conc: int) -> float:
    """Return jobs/s of ``processes`` burst workers over ``jobs`` pre-enqueued task jobs.

    ``CPU[-1]`` is then the workers' CPU seconds (start-up and exit included).
    """
    queue = await create_redis_queue(consumer_name="bench", config=QueueConfig(redis_url=url))
    await queue.redis.flushall()
    queue._known_queues.clear()
    for start in range(0, jobs, 1000):
        await queue.enqueue_many(
            [task_job(SEEN) for _ in range(start, min(jobs, start + 1000))], "tasks"
        )
    cpu = _children_cpu()
    running = [worker(env, conc, "--burst") for _ in range(processes)]
    for process in running:
        process.wait()
    CPU.append(_children_cpu() - cpu)
    if not jobs:
        await queue.close()
        return 0.0
    stats = await queue.get_queue_stats("tasks")
    completed = stats["completed"]
    starts = sorted(float(raw) for raw in await queue.redis.lrange(SEEN, 0, -1))
    await queue.close()
    assert completed == jobs == len(starts), (stats, len(starts))
    return (jobs - 1) / (starts[-1] - starts[0])


async def pickup(url: str, env: dict[str, str], samples: int) -> tuple[list[float], int]:
    """Return pickup latencies (s) at 100 jobs/s and the idle worker's RSS (bytes)."""
    queue = await create_redis_queue(consumer_name="bench", config=QueueConfig(redis_url=url))
    await queue.redis.flushall()
    queue._known_queues.clear()
    reader = Redis.from_url(url)
    process = worker(env, 10)
    try:
        await queue.enqueue(task_job("bench:warm"), queue_name="tasks")
        await reader.blpop(["bench:warm"], timeout=60)
        await asyncio.sleep(1.0)
        rss = _rss(process.pid)
        latencies = []
        for _ in range(samples):
            tick = time.monotonic()
            sent = time.time()
            await queue.enqueue(task_job(SEEN), queue_name="tasks")
            _, raw = await reader.blpop([SEEN], timeout=30)  # type: ignore[misc]
            latencies.append(float(raw) - sent)
            await asyncio.sleep(max(0.0, 0.01 - (time.monotonic() - tick)))
    finally:
        process.terminate()
        process.wait()
        await reader.aclose()
        await queue.close()
    return latencies, rss


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def migrate(env: dict[str, str]) -> None:
    """Create the worker's SQLite database (the ledger writes to it)."""
    command = [sys.executable, str(TREE / "manage.py"), "migrate", "-v", "0"]
    subprocess.run(command, env=env, cwd=TREE, check=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


async def sweep(url: str, env: dict[str, str], args: Any) -> None:
    """Print jobs/s and CPU per job of one worker at each concurrency, rounds interleaved."""
    levels = [int(level) for level in args.sweep.split(",")]
    rates: dict[int, list[float]] = {level: [] for level in levels}
    cpus: dict[int, list[float]] = {level: [] for level in levels}
    for _ in range(args.rounds):
        await throughput(url, env, 0, 1, levels[0])
        idle = CPU[-1]  # start-up and exit of a worker that finds no job
        for level in levels:
            rates[level].append(await throughput(url, env, args.jobs, 1, level))
            cpus[level].append((CPU[-1] - idle) / args.jobs * 1e6)
    for level in levels:
        rate, cpu = statistics.median(rates[level]), statistics.median(cpus[level])
        spread = ", ".join(f"{value:,.0f}" for value in rates[level])
        print(
            f"@task 1 queue_worker, concurrency {level or 'default'}: {rate:8,.0f} jobs/s"
            f" ({spread}), {cpu:6.0f} µs CPU/job"
        )


async def main(args: Any) -> None:
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="bench-tasks-") as run_dir:
        env = environment(url, run_dir)
        migrate(env)
        print(f"tree {TREE} {' '.join(EXTRA)}")
        if args.sweep:
            await sweep(url, env, args)
            return
        one = await throughput(url, env, args.jobs, 1, args.concurrency)
        print(f"@task jobs/s, 1 queue_worker, concurrency {args.concurrency}: {one:8,.0f}")
        two = await throughput(url, env, args.jobs, 2, args.concurrency)
        print(
            f"@task jobs/s, 2 queue_workers, concurrency {args.concurrency}: {two:8,.0f}"
            f" ({two / one:.2f}x one)"
        )
        latencies, rss = await pickup(url, env, args.samples)
        p50, p99 = statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000
        print(f"@task pickup at 100 jobs/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print(f"queue_worker idle RSS: {rss / 2**20:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--extra", action="append", default=[], help="a queue_worker flag")
    parser.add_argument(
        "--sweep", default="", help="concurrencies to compare (1,10,100; 0: the default) instead"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --sweep")
    arguments = parser.parse_args()
    EXTRA.extend(arguments.extra)
    asyncio.run(main(arguments))
