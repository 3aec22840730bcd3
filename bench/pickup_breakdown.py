"""Where the pickup latency of the library worker and of ``@task`` goes, beside the floor's.

Pickup is measured as ``make bench-peers`` does: one private redis-server, one worker process
(the library worker at its default concurrency; ``manage.py queue_worker --queues tasks`` for
the ``@task`` of ``peers/project_tasks.py``, enqueued with ``task.enqueue()``; or the bare
consumer of the floor row, ``peers/floor_app.py``), and this process enqueueing SAMPLES jobs at
RATE per second, each carrying the producer's ``time.time()``. Timestamps on one clock split
each pickup into:

- producer: from that time to the send of the enqueue command (the job, the client library);
- Redis and the wire: from the send to the worker's read of the reply that delivers the job
  (the commands or scripts, the wake-ups of Redis and the worker, the transfers);
- worker: from that read to the handler's start (parsing, building and starting the job,
  dispatch);

and, in a second run of the same samples, SLOWLOG (every command; it slows each a little, so
that run's segments are not kept) gives Redis's time per call of each script (library) and
command (floor), with the calls per job. Medians per run; the runs of the systems interleaved.

Usage: .venv/bin/python bench/pickup_breakdown.py [--reps 3] [--samples 300] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import redis
from _redis import private_redis
from peers import procs, shape
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.connection import AbstractConnection as SyncConnection

from queue_app.queue.redis.consumer import QueueConsumer

SYSTEMS = {"library": "project_app", "tasks": "project_tasks", "floor": "floor_app"}
#: Commands of the SLOWLOG report: the library's scripts (not the commands they run) and the
#: floor's commands.
REPORTED = {"library": ("script ",), "tasks": ("script ",), "floor": ("X", "INCR", "RPUSH")}
SEGMENTS = ("producer", "redis_and_wire", "worker", "pickup")
#: Seconds the worker gets to start before the first sample.
START_SECONDS = 2.0

#: time.time() of the worker's last reply read ("read") and of the read that delivered the job
#: its handler runs ("delivered"); of the producer's first send since the last clear ("send").
STAMPS: dict[str, float] = {}


def stamp_deliveries(system: str) -> None:
    """Record when the worker read the reply of the read or take that delivered a job.

    Every reply read is stamped; where the worker holds the delivering reply parsed (the take's
    replies reaching ``_taken``, the floor's pipeline returning) the stamp of its last read,
    made in the same step of the same task, is kept as the delivery's.
    """
    read_response = AbstractConnection.read_response

    async def read(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        reply = await read_response(self, *args, **kwargs)
        STAMPS["read"] = time.time()
        return reply

    AbstractConnection.read_response = read  # type: ignore[method-assign]
    if system == "floor":
        execute = Pipeline.execute

        async def delivered(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
            replies = await execute(self, *args, **kwargs)
            STAMPS["delivered"] = STAMPS["read"]
            return replies

        Pipeline.execute = delivered  # type: ignore[method-assign]
        return
    taken = QueueConsumer._taken

    def take(self: QueueConsumer, *args: Any, **kwargs: Any) -> Any:
        STAMPS["delivered"] = STAMPS["read"]
        return taken(self, *args, **kwargs)

    QueueConsumer._taken = take  # type: ignore[method-assign]


def stamp_sends() -> None:
    """Record when the first command since the last ``STAMPS.clear()`` is sent (both clients)."""
    async_send = AbstractConnection.send_packed_command
    sync_send = SyncConnection.send_packed_command

    async def stamped_async(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        STAMPS.setdefault("send", time.time())
        await async_send(self, *args, **kwargs)

    def stamped_sync(self: SyncConnection, *args: Any, **kwargs: Any) -> None:
        STAMPS.setdefault("send", time.time())
        sync_send(self, *args, **kwargs)

    AbstractConnection.send_packed_command = stamped_async  # type: ignore[method-assign]
    SyncConnection.send_packed_command = stamped_sync  # type: ignore[method-assign]


def run_worker(system: str, records: Path) -> None:
    """Run the worker of ``system``, recording (sent, delivered, handler start) per job."""
    rows: list[tuple[float, float, float]] = []
    record = shape.arecord

    async def timed_record(sent: float) -> None:
        if sent:
            rows.append((sent, STAMPS.get("delivered", 0.0), time.time()))
        await record(sent)

    shape.arecord = timed_record  # type: ignore[assignment]
    stamp_deliveries(system)
    if system == "floor":
        from peers import floor_app

        def write_and_exit(*_: Any) -> None:
            records.write_text(json.dumps(rows))
            os._exit(0)

        signal.signal(signal.SIGTERM, write_and_exit)
        asyncio.run(floor_app.FloorWorker(shape.async_client(), concurrency=3).run())
        return
    # SIGTERM: a graceful stop, then the records.
    if system == "library":
        from peers import project_app

        asyncio.run(project_app.work(concurrency=3, production=False))
    else:
        from django.core.management import call_command
        from peers import project_tasks  # noqa: F401  (Django set up, the task registered)

        call_command("queue_worker", "--queues", "tasks")
    records.write_text(json.dumps(rows))


async def produce(system: str, samples: int, rate: float) -> list[float]:
    """Enqueue ``samples`` jobs at ``rate``; return the send time of each, in order."""
    app = __import__(f"peers.{SYSTEMS[system]}", fromlist=["producer"])
    sends: list[float] = []
    async with app.producer() as enqueue:
        first = enqueue(0.0)  # connect and load scripts before the samples
        if inspect.isawaitable(first):
            await first
        started = time.perf_counter()
        for i in range(samples):
            pause = started + i / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            STAMPS.clear()
            enqueued = enqueue(time.time())
            if inspect.isawaitable(enqueued):
                await enqueued
            sends.append(STAMPS["send"])
    return sends


def script_names() -> dict[str, str]:
    """Return the name of each of the library's scripts by its function's name."""
    from queue_app.queue.redis.scripts import SCRIPTS

    return {script.function: name for name, script in SCRIPTS.items()}


def slowlog_medians(client: redis.Redis, system: str, samples: int) -> dict[str, list[float]]:
    """Return [median µs, calls per job] of each reported command (a script by its name)."""
    names = script_names()
    durations: dict[str, list[int]] = defaultdict(list)
    for entry in client.slowlog_get(1_000_000):
        words = entry["command"].split()
        command = words[0].decode().upper()
        if command == "FCALL":
            command = "script " + names.get(words[1].decode(), words[1].decode()[:8])
        if command.startswith(REPORTED[system]):
            durations[command].append(int(entry["duration"]))
    return {
        name: [statistics.median(values), len(values) / samples]
        for name, values in sorted(durations.items())
    }


def one_run(url: str, system: str, samples: int, rate: float, slowlog: bool) -> dict[str, Any]:
    """Measure ``samples`` pickups of ``system``: the median of each segment (µs), or with
    ``slowlog`` the median µs and calls per job of each command."""
    client = redis.Redis.from_url(url)
    client.flushall()
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "records.json"
        worker = subprocess.Popen(  # this process's environment: the run's (main)
            [sys.executable, __file__, "--worker", system, "--records", str(records)]
        )
        try:
            time.sleep(START_SECONDS)
            if slowlog:
                client.config_set("slowlog-max-len", 1_000_000)
                client.config_set("slowlog-log-slower-than", 0)
                client.slowlog_reset()
            sends = asyncio.run(produce(system, samples, rate))
            time.sleep(0.5)
        finally:
            client.config_set("slowlog-log-slower-than", 10_000)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        if slowlog:
            commands = slowlog_medians(client, system, samples)
            client.slowlog_reset()
            return {"slowlog": commands}
        rows = json.loads(records.read_text())
    return {"segments": _segments(sends, rows[-len(sends) :])}


def _segments(sends: list[float], rows: list[list[float]]) -> dict[str, float]:
    parts: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    for send, (sent, reply, started) in zip(sends, rows, strict=True):
        parts["producer"].append(send - sent)
        parts["redis_and_wire"].append(reply - send)
        parts["worker"].append(started - reply)
        parts["pickup"].append(started - sent)
    return {name: statistics.median(values) * 1e6 for name, values in parts.items()}


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Print the medians over the runs of each segment and of each SLOWLOG command."""
    print(f"{'median µs':34s}" + "".join(f"{system:>12s}" for system in runs))
    for segment in SEGMENTS:
        values = [
            statistics.median(r["segments"][segment] for r in runs[s] if "segments" in r)
            for s in runs
        ]
        print(f"{segment:34s}" + "".join(f"{v:12.0f}" for v in values))
    print("Redis, median µs per call (calls per job):")
    for system, results in runs.items():
        logged = [r["slowlog"] for r in results if "slowlog" in r]
        commands = sorted({name for log in logged for name in log})
        seen = {name: [log[name] for log in logged if name in log] for name in commands}
        cells = [
            f"{name} {statistics.median(v[0] for v in values):.0f}"
            f" ({statistics.median(v[1] for v in values):.1f})"
            for name, values in seen.items()
        ]
        print(f"  {system}: " + ", ".join(cells))


def main() -> None:
    """Parse the options; run the interleaved repetitions (or, with --worker, one worker)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.records)
        return
    stamp_sends()
    runs: dict[str, list[dict[str, Any]]] = {system: [] for system in SYSTEMS}
    with private_redis() as url, tempfile.TemporaryDirectory() as run_dir:
        # Django's settings for the @task producer (this process) and worker, as bench-peers.
        env = procs.Environment(url, Path(run_dir))
        os.environ.update(env.variables())
        procs.migrate(env)
        for rep in range(args.reps):
            for system in SYSTEMS:
                print(f"rep {rep + 1}/{args.reps}: {system}", file=sys.stderr)
                for slowlog in (False, True):
                    run = one_run(url, system, args.samples, args.rate, slowlog)
                    runs[system].append(run)
    report(runs)


if __name__ == "__main__":
    main()
