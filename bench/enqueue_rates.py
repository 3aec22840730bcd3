"""Measure enqueue rates where users touch them: `enqueue()`, `enqueue_many`, `task.enqueue()`.

Each rate is measured in a fresh subprocess against one private redis-server (flushed between
runs), several times in turn (A, B, A, B ...), and the median is printed: the machine is shared
and noisy, so only rates measured side by side compare.

Usage: .venv/bin/python bench/enqueue_rates.py [--reps 5] [--before TREE] [--huey PYTHON]

  --before TREE   also measure another checkout of the project (e.g. a worktree of main), run
                  with this interpreter and PYTHONPATH=TREE, and print after/before ratios.
  --huey PYTHON   also measure huey's ``task()`` enqueue one by one (RedisHuey, same Redis) with
                  an interpreter that has huey installed, as the reference rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from pathlib import Path

import redis
from _clock import Clock
from _redis import private_redis

ROOT = Path(__file__).resolve().parents[1]
#: Jobs per measured run of each case.
COUNTS = {"enqueue": 5000, "enqueue_many": 40_000, "task.enqueue": 5000, "huey": 5000}
HUEY = """
import sys, time, redis
from huey import RedisHuey
count, url = int(sys.argv[1]), sys.argv[2]
huey = RedisHuey("bench", url=url)
@huey.task()
def add(a, b):
    return a + b
for _ in range(500):
    add(2, 3)
server = redis.Redis.from_url(url)
def cpu():
    info = server.info("cpu")
    return time.perf_counter(), time.process_time(), info["used_cpu_user"] + info["used_cpu_sys"]
before = cpu()
for _ in range(count):
    add(2, 3)
after = cpu()
print(*(1e6 * (b - a) / count for a, b in zip(before, after)))
"""


async def _library(url: str, case: str, count: int) -> str:
    from queue_app.queue import Job, QueueConfig, create_redis_queue

    queue = await create_redis_queue(consumer_name="bench", config=QueueConfig(redis_url=url))
    for i in range(500):
        await queue.enqueue(Job(payload={"i": i}))
    clock = Clock(url)
    started = clock.read()
    if case == "enqueue":
        for i in range(count):
            await queue.enqueue(Job(payload={"i": i}))
    else:
        await queue.enqueue_many([Job(payload={"i": i}) for i in range(count)])
    done = clock.read()
    await queue.close()
    return Clock.per_job(started, done, count)


def _tasks(url: str, count: int) -> str:
    os.environ.update(
        REDIS_URL=url,
        DJANGO_SETTINGS_MODULE="aragora_site.settings",
        ARAGORA_SECRET_KEY="bench-only-key-of-a-throw-away-site-0123456789abcdefghijklmnop",
        ARAGORA_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from queue_app.tasks.examples import add

    for _ in range(500):
        add.enqueue(2, 3)
    clock = Clock(url)
    started = clock.read()
    for _ in range(count):
        add.enqueue(2, 3)
    return Clock.per_job(started, clock.read(), count)


def run_case(case: str, url: str) -> None:
    """Measure one case in this process; print wall, client CPU and server CPU µs per job."""
    count = COUNTS[case]
    if case == "task.enqueue":
        print(_tasks(url, count))
    else:
        print(asyncio.run(_library(url, case, count)))


def _measure(argv: list[str], url: str, env: dict[str, str], cwd: Path) -> list[float]:
    redis.Redis.from_url(url).flushall()
    done = subprocess.run(
        [*argv, url], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    return [float(word) for word in done.stdout.split()[-3:]]


def _runners(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    """Return how to run each (tree, case): argv without the URL, environment, directory."""
    me = [sys.executable, str(Path(__file__).resolve()), "--case"]
    runners = {}
    for case in ("enqueue", "enqueue_many", "task.enqueue"):
        runners[f"{case} (this tree)"] = ([*me, case], dict(os.environ), ROOT)
        if args.before:
            before = Path(args.before).resolve()
            env = {**os.environ, "PYTHONPATH": str(before)}
            runners[f"{case} (before)"] = ([*me, case], env, Path("/"))
    if args.huey:
        argv = [args.huey, "-c", HUEY, str(COUNTS["huey"])]  # then the URL
        runners["huey task() enqueue"] = (argv, dict(os.environ), ROOT)
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--before")
    parser.add_argument("--huey")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.url)
        return
    runs: dict[str, list[list[float]]] = {}
    with private_redis() as url:
        runners = _runners(args)
        for _ in range(args.reps):
            for name, (argv, env, cwd) in runners.items():
                runs.setdefault(name, []).append(_measure(argv, url, env, cwd))
    report(runs, args.reps)


def report(runs: dict[str, list[list[float]]], reps: int) -> None:
    """Print medians per runner: jobs/s, CPU µs per job; ratios to huey and to the tree before.

    CPU per job (client process + Redis server) is the steadier figure on a busy machine: the
    wall-clock rate drops whenever other processes take the cores.
    """
    table = {
        name: [statistics.median(column) for column in zip(*rows, strict=True)]
        for name, rows in runs.items()
    }
    huey = table.get("huey task() enqueue")
    head = f"{'jobs/s':>10s} {'client':>8s} {'redis':>8s} {'cpu/job':>8s}"
    print(f"{'':32s} {head}  (medians of {reps}; CPU in µs per job)")
    for name, (wall, client, server) in table.items():
        cpu = client + server
        extra = ""
        if huey and "huey" not in name:
            extra = f"  rate {huey[0] / wall:.2f}x huey, cpu {(huey[1] + huey[2]) / cpu:.2f}x"
        print(f"{name:32s} {1e6 / wall:10,.0f} {client:8.1f} {server:8.1f} {cpu:8.1f}{extra}")
    for name, (wall, client, server) in table.items():
        before = table.get(name.replace("(this tree)", "(before)"))
        if "(this tree)" in name and before:
            label = name.replace(" (this tree)", "")
            cpu = (before[1] + before[2]) / (client + server)
            print(f"{label:32s} after/before: rate {before[0] / wall:.2f}x, cpu {cpu:.2f}x")


if __name__ == "__main__":
    main()
