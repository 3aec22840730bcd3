"""Measure the ledger writer: CPU per insert and per update event, and with webhook events.

The ledger writer drains the job events of the Redis ledger streams into ``JobRecord`` rows;
in a worker process it shares the CPU (and the GIL) with the jobs, so its cost is CPU time,
not wall time (a loaded machine stretches wall time, not CPU time). Starts a private
redis-server and a throw-away SQLite database, then per round:

- enqueues JOBS debate jobs of one organization and drains the ledger: insert events (new rows);
- finishes them and drains again: update events (rows overwritten by a newer event);
- with three endpoints subscribed to ``job.completed``, the update drain also enqueues three
  webhook jobs per finished job.

Each drain prints the CPU time per event of ``store_events`` alone (the SQL, measured in the
database thread with ``time.thread_time``) and of the whole drain (``time.process_time``:
Redis reads, decoding, SQL and webhook jobs). Rounds repeat to show the spread.

Usage: .venv/bin/python bench/ledger_events.py [jobs] [rounds]   (default 5000 jobs, 3 rounds)

With ``BENCH_DATABASE_URL`` set (``postgres://postgres@127.0.0.1:5432/ledgerbench``: a database
of its own, which the run migrates and empties first), the rows go there instead of SQLite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _redis import private_redis

ROOT = Path(__file__).resolve().parents[1]
JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
#: CPU seconds of ``store_events`` calls in the database thread, since the last reset.
STORE_CPU = [0.0]


def setup_django(redis_url: str, workdir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="aragora_site.settings",
        REDIS_URL=redis_url,
        ARAGORA_RUN_DIR=workdir,
        ARAGORA_SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir}/db.sqlite3",
        ARAGORA_LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    call_command("flush", "--noinput", verbosity=0)
    from queue_app.stores import ledger_writer

    ledger_writer.store_events = _timed(ledger_writer.store_events)  # type: ignore[method-assign]


def _timed(store: Callable[[Sequence[Any]], int]) -> Callable[[Sequence[Any]], int]:
    def timed(events: Sequence[Any]) -> int:
        started = time.thread_time()
        try:
            return store(events)
        finally:
            STORE_CPU[0] += time.thread_time() - started

    return timed


async def enqueue_jobs(count: int) -> None:
    from queue_app.queue import Job, create_redis_queue, get_queue_config

    queue = await create_redis_queue(consumer_name="bench", config=get_queue_config())
    meta = {"job_type": "debate", "organization": "acme", "owner": "7"}
    for start in range(0, count, 1000):
        jobs = [Job(payload={"i": i}, metadata=dict(meta)) for i in range(start, start + 1000)]
        await queue.enqueue_many(jobs[: count - start])
    await queue.close()


async def finish_jobs(count: int) -> None:
    from queue_app.queue import create_redis_queue, get_queue_config

    queue = await create_redis_queue(consumer_name="bench", config=get_queue_config())
    done = 0
    while done < count:
        jobs = await queue.dequeue_many("bench", 500, 100)
        await queue.finish_many([(job.id, "", "completed", '{"answer":42}', 0) for job in jobs])
        done += len(jobs)
    await queue.close()


async def drain() -> tuple[int, float, int]:
    """Drain the ledger; return events stored, CPU seconds, and webhook jobs enqueued."""
    from queue_app.queue import create_redis_queue, get_queue_config
    from queue_app.stores.ledger_writer import LedgerWriter
    from workers.webhooks import WEBHOOKS_QUEUE

    config = get_queue_config()
    writer = LedgerWriter(config=config, block_ms=10)
    STORE_CPU[0] = 0.0
    started, stored = time.process_time(), 0
    while batch := await writer.drain_once():
        stored += batch
    cpu = time.process_time() - started
    await writer.close()
    probe = await create_redis_queue(consumer_name="probe", config=config)
    webhooks = (await probe.get_queue_stats(WEBHOOKS_QUEUE))["pending"]
    await probe.redis.delete(*await probe.redis.keys(f"*{WEBHOOKS_QUEUE}*") or ["none"])
    await probe.close()
    return stored, cpu, webhooks


def measure(step: Callable[[int], Any]) -> tuple[float, float, int, int]:
    """Run ``step`` then drain; return µs CPU per event (store_events, drain), events, webhooks.

    With endpoints, the drain also stores the insert events of the webhook jobs it enqueued.
    """
    asyncio.run(step(JOBS))
    stored, cpu, webhooks = asyncio.run(drain())
    assert stored == JOBS + webhooks, (stored, JOBS, webhooks)
    return STORE_CPU[0] / stored * 1e6, cpu / stored * 1e6, stored, webhooks


def report(label: str, samples: list[tuple[float, float, int, int]]) -> None:
    store = statistics.median(s[0] for s in samples)
    whole = statistics.median(s[1] for s in samples)
    spread = ", ".join(f"{s[0]:.0f}" for s in samples)
    print(
        f"  {label:<34} store_events {store:6.1f} µs CPU/event ({spread}),"
        f" whole drain {whole:6.1f} µs CPU/event; {samples[-1][2]} events,"
        f" {samples[-1][3]} webhook jobs"
    )


def main() -> None:
    workdir = tempfile.mkdtemp(prefix="bench-ledger-")
    try:
        with private_redis() as url:
            setup_django(url, workdir)
            from django.db import connection

            from queue_app.models import JobRecord, WebhookEndpoint

            vendor = connection.vendor
            print(f"ledger writer, {JOBS} debate jobs a round, {ROUNDS} rounds, {vendor}, {ROOT}:")
            inserts, updates, webhooks = [], [], []
            for _ in range(ROUNDS):
                inserts.append(measure(enqueue_jobs))
                updates.append(measure(finish_jobs))
            for n in range(3):
                WebhookEndpoint.objects.create(
                    url=f"https://hooks{n}.example.com/",
                    secret=f"bench-secret-{n:04d}-xxxx",
                    organization="acme",
                    event_types=["job.completed"],
                )
            for _ in range(ROUNDS):
                inserts.append(measure(enqueue_jobs))
                webhooks.append(measure(finish_jobs))
            report("insert events (enqueued)", inserts)
            report("update events (completed)", updates)
            report("update events, 3 endpoints", webhooks)
            print(f"  ledger rows: {JobRecord.objects.count()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
