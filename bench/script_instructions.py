"""Count the instructions Redis spends per script call (callgrind of a private redis-server).

Runs redis-server under ``valgrind --tool=callgrind``, collecting only inside ``fcallCommand``,
and prints the instructions per call of enqueue, take (one job), start (one job), finish (one
job) and an empty take, each phase ``CALLS`` calls, then per job of one enqueue call of
``ENQUEUE_BATCH`` jobs and of one finish call of ``BATCH`` jobs. Needs valgrind.

    .venv/bin/python bench/script_instructions.py
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from _redis import _free_port, wait_for_ping

from queue_app.queue import Job, QueueConfig, create_redis_queue

CALLS = 100
#: Jobs of the one enqueue call and of the one finish call whose instructions per job are printed.
ENQUEUE_BATCH = 500
BATCH = 50
QUEUE = QueueConfig().default_queue


@contextlib.contextmanager
def callgrind_redis(workdir: Path) -> Iterator[tuple[int, int]]:
    """Yield the port and pid of a redis-server running under callgrind."""
    port = _free_port()
    args = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=fcallCommand",
        f"--callgrind-out-file={workdir}/cg.out",
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(workdir),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_ping(port, seconds=30.0)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait()


def instructions(workdir: Path, pid: int, before: set[Path]) -> int:
    """Dump the counters collected since the last zeroing; return their total."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    new = sorted(set(workdir.glob("cg.out*")) - before, key=lambda p: p.stat().st_mtime)
    before.update(new)
    total = 0
    for line in new[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    return total


async def measure(port: int, pid: int, workdir: Path) -> None:
    queue = await create_redis_queue(
        consumer_name="bench", config=QueueConfig(redis_url=f"redis://127.0.0.1:{port}/0")
    )
    await queue.ensure_queue(QUEUE)
    seen: set[Path] = set(workdir.glob("cg.out*"))
    instructions(workdir, pid, seen)

    async def phase(name: str, step: Callable[[int], Awaitable[object]]) -> None:
        for i in range(3):  # warm: the scripts are loaded, the keys exist
            await step(i)
        instructions(workdir, pid, seen)
        for i in range(CALLS):
            await step(i)
        print(f"{name:28s} {instructions(workdir, pid, seen) / CALLS:10,.0f} instructions/call")

    async def enqueue(i: int) -> None:
        await queue.enqueue(Job(payload={"i": i}))

    await phase("enqueue", enqueue)
    jobs = []

    async def take(i: int) -> None:
        jobs.extend(await queue.dequeue_many("bench", 1, timeout_ms=0))

    await phase("take (1 job)", take)

    async def finish(i: int) -> None:
        job = jobs.pop()
        await queue.finish_many([(job.id, job.delivery_token or "", "completed", "null", 0)])

    await phase("finish (1 job)", finish)

    async def start(i: int) -> None:
        reply = await queue.redis.xreadgroup(
            queue.group_name, "bench", {queue.keys.stream(QUEUE): ">"}, count=1
        )
        messages = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        entry, fields = messages[0]
        job_id = fields["job_id"]
        args = ["bench", 1, "0", entry, job_id]
        await queue._run("start", QUEUE, args, queue.keys.jobs(QUEUE, [job_id]))

    await queue.enqueue_many([Job(payload={"i": i}) for i in range(CALLS + 3)])
    await phase("start (1 job)", start)

    async def empty(i: int) -> None:
        assert not await queue.dequeue_many("bench", 1, timeout_ms=0)

    await phase("empty take", empty)

    instructions(workdir, pid, seen)
    await queue.enqueue_many([Job(payload={"i": i}) for i in range(ENQUEUE_BATCH)])
    per_job = instructions(workdir, pid, seen) / ENQUEUE_BATCH
    print(f"{f'enqueue ({ENQUEUE_BATCH} jobs, one call)':28s} {per_job:10,.0f} instructions/job")
    await queue.redis.flushall()
    queue._known_queues.clear()
    await queue.ensure_queue(QUEUE)

    await queue.enqueue_many([Job(payload={"i": i}) for i in range(BATCH)])
    batch = await queue.dequeue_many("bench", BATCH, timeout_ms=0)
    instructions(workdir, pid, seen)
    await queue.finish_many([(j.id, j.delivery_token or "", "completed", "null", 0) for j in batch])
    per_job = instructions(workdir, pid, seen) / BATCH
    print(f"{f'finish ({BATCH} jobs, one call)':28s} {per_job:10,.0f} instructions/job")
    await queue.close()


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    try:
        with callgrind_redis(workdir) as (port, pid):
            asyncio.run(measure(port, pid, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
