"""Measure how no-op jobs/s scale with 1, 2 and 4 `manage.py queue_worker` processes on one Redis.

Each run enqueues JOBS `noop` jobs on the `diagnostics` queue (measuring Redis's enqueue cost
alone), then starts N real worker processes (`queue_worker --queues diagnostics`, the
DiagnosticsWorker, no ledger) on a private redis-server. The window starts once all N are
registered (so Django's start-up is left out) and ends when every job is completed. Printed per
run:

- jobs/s over the window (jobs completed in it / its length);
- Redis CPU (INFO cpu: used_cpu_sys + used_cpu_user delta) per job, in microseconds, and the
  share of one core Redis used;
- Redis commands per job (INFO commandstats delta; commands inside scripts are counted too;
  commandstats' usec is left out: it is wall time, and preemption on a loaded machine inflates
  it past the CPU time);
- the worker processes' CPU per job (/proc/<pid>/stat utime + stime delta over the window).

Runs are interleaved (1, 2, 4, 1, 2, 4) so that the other load of a shared machine spreads over
all counts. The last lines estimate how many fully busy worker processes one Redis can feed:
(worker CPU per job) / (Redis CPU per job, enqueue included), a ratio of CPU times that the
wall-clock noise of a loaded machine moves far less than jobs/s.

Usage: .venv/bin/python bench/worker_scaling.py [JOBS [CONCURRENCY]]   (default 20,000 per run,
concurrency 20 per process)
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis
from _redis import private_redis

from queue_app.queue import Job, QueueConfig, create_redis_queue
from queue_app.queue.redis.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "diagnostics"
PROCESS_COUNTS = (1, 2, 4, 1, 2, 4)
#: --concurrency of each worker process (the second argument changes it).
CONCURRENCY = 20
BATCH = 500
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEYS = Keys()
SCRIPT_CALLS = ("evalsha", "evalsha_ro", "eval", "eval_ro", "fcall")


@dataclass
class Cost:
    """Redis's work for ``jobs`` jobs: CPU seconds and commands by name."""

    jobs: int
    redis_cpu: float
    calls: Counter[str]


@dataclass
class Run:
    """What one run measured while all its workers were up (enqueueing measured apart)."""

    processes: int
    jobs: int
    seconds: float
    enqueue: Cost
    redis_cpu: float
    worker_cpu: float
    calls: Counter[str]


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def command_calls(client: redis.Redis) -> Counter[str]:
    """Return the calls of each command so far (commands inside scripts included)."""
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()})


def process_cpu(pids: list[int]) -> float:
    """Return the CPU seconds (user + system) the processes used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def start_workers(
    count: int, url: str, workdir: str, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARAGORA_", "OTEL_"))},
        "REDIS_URL": url,
        "ARAGORA_SECRET_KEY": "bench-only-secret-key-0123456789",
        "ARAGORA_RUN_DIR": workdir,
        "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        "ARAGORA_LOG_LEVEL": "WARNING",
        "OTEL_SDK_DISABLED": "true",
    }
    args = [sys.executable, "manage.py", "queue_worker", "--queues", QUEUE, "--no-ledger"]
    args += ["--concurrency", str(concurrency)]
    return [
        subprocess.Popen([*args, "--worker-id", f"scale-{n}"], cwd=ROOT, env=env)
        for n in range(count)
    ]


def wait_until(check: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


async def enqueue(url: str, jobs: int) -> None:
    producer = await create_redis_queue(consumer_name="producer", config=QueueConfig(redis_url=url))
    try:
        for start in range(0, jobs, BATCH):
            batch = [
                Job(payload={"i": i}, metadata={"job_type": "noop"})
                for i in range(start, min(jobs, start + BATCH))
            ]
            await producer.enqueue_many(batch, queue_name=QUEUE)
    finally:
        await producer.close()


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def one_run(url: str, processes: int, jobs: int, concurrency: int) -> Run:
    """Enqueue ``jobs``, start the workers, measure from the moment all of them are registered."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    cpu0, calls0 = redis_cpu(client), command_calls(client)
    asyncio.run(enqueue(url, jobs))
    enqueue_cost = Cost(jobs, redis_cpu(client) - cpu0, command_calls(client) - calls0)
    completed = KEYS.index(QUEUE, "completed")
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
        workers = start_workers(processes, url, workdir, concurrency)
        pids = [worker.pid for worker in workers]
        try:
            wait_until(lambda: client.zcard(KEYS.workers()) == processes, "workers")
            started, done0 = redis_now(client), client.zcard(completed)
            if done0 > jobs // 2:
                raise SystemExit(f"{done0:,} jobs ran before every worker was up: raise JOBS")
            cpu0, calls0, wcpu0 = redis_cpu(client), command_calls(client), process_cpu(pids)
            wait_until(lambda: client.zcard(completed) >= jobs, "all jobs completed")
            run = Run(
                processes=processes,
                jobs=jobs - done0,
                seconds=redis_now(client) - started,
                enqueue=enqueue_cost,
                redis_cpu=redis_cpu(client) - cpu0,
                worker_cpu=process_cpu(pids) - wcpu0,
                calls=command_calls(client) - calls0,
            )
        finally:
            stop(workers)
    client.close()
    return run


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


def top_calls(calls: Counter[str], jobs: int) -> str:
    """Return commands per job, script calls among them, and the most called."""
    scripts = sum(calls[name] for name in SCRIPT_CALLS) / jobs
    top = ", ".join(f"{name} {n / jobs:.2f}" for name, n in calls.most_common(4))
    return f"{calls.total() / jobs:.1f} commands/job, {scripts:.2f} script calls ({top})"


def report(run: Run) -> None:
    jobs = run.jobs
    print(
        f"{run.processes} process(es): {jobs / run.seconds:7,.0f} jobs/s over {jobs:,} jobs"
        f" | Redis CPU {run.redis_cpu / jobs * 1e6:5.1f} us/job"
        f" ({run.redis_cpu / run.seconds:4.0%} of a core)"
        f" | workers {run.worker_cpu / jobs * 1e6:6.1f} us/job"
        f" | {top_calls(run.calls, jobs)}"
    )


def summary(runs: list[Run]) -> None:
    print("\nmedian per process count (noisy: 2 shared cores)")
    by_count: dict[int, list[Run]] = {}
    for run in runs:
        by_count.setdefault(run.processes, []).append(run)
    base = None
    for count, group in sorted(by_count.items()):
        rate = statistics.median(run.jobs / run.seconds for run in group)
        base = base or rate
        print(f"  {count} process(es): {rate:7,.0f} jobs/s ({rate / base:.2f}x of 1 process)")
    jobs = sum(run.jobs for run in runs)
    enqueued = sum(run.enqueue.jobs for run in runs)
    enqueue_us = sum(run.enqueue.redis_cpu for run in runs) / enqueued * 1e6
    enqueue_calls = sum((run.enqueue.calls for run in runs), Counter())
    run_us = sum(run.redis_cpu for run in runs) / jobs * 1e6
    worker_us = sum(run.worker_cpu for run in runs) / jobs * 1e6
    total_us = enqueue_us + run_us
    print(f"Redis CPU per job: enqueue {enqueue_us:.1f} us ({top_calls(enqueue_calls, enqueued)})")
    print(f"  + take/run/finish {run_us:.1f} us = {total_us:.1f} us")
    print(f"  -> one Redis core: ~{1e6 / total_us:,.0f} jobs/s enqueued and run")
    print(f"worker CPU per no-op job {worker_us:.1f} us: ~{1e6 / worker_us:,.0f} jobs/s per core")
    print(
        f"one Redis (one Cluster shard: a queue's keys share one slot) feeds"
        f" ~{worker_us / total_us:.1f} fully busy no-op worker processes; a job whose handler"
        " takes H us of CPU raises that by H / Redis-us-per-job"
    )


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else CONCURRENCY
    print(
        f"{jobs:,} no-op jobs per run, queue_worker --concurrency {concurrency}, os.cpu_count()"
        f" = {os.cpu_count()}"
    )
    with private_redis() as url:
        runs = []
        for processes in PROCESS_COUNTS:
            runs.append(one_run(url, processes, jobs, concurrency))
            report(runs[-1])
        summary(runs)


if __name__ == "__main__":
    main()
