"""Measure the ledger writer with webhook events: events/s with no endpoint, and with three.

Job events are emitted by the ledger writer, off the jobs' hot path; this shows what they cost
the writer. Starts a private redis-server and a throw-away SQLite database, finishes JOBS
debate jobs of one organization, then drains the ledger twice: once with no webhook endpoint,
once with three endpoints subscribed to ``job.completed`` (3 webhook jobs per finished job).

Usage: .venv/bin/python bench/ledger_events.py [jobs]   (default 5000)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _redis import private_redis

ROOT = Path(__file__).resolve().parents[1]
JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000


def setup_django(redis_url: str, workdir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="aragora_site.settings",
        REDIS_URL=redis_url,
        ARAGORA_RUN_DIR=workdir,
        DATABASE_URL=f"sqlite:///{workdir}/db.sqlite3",
        ARAGORA_LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)


async def finish_jobs(count: int) -> None:
    from queue_app.queue import Job, create_redis_queue, get_queue_config

    queue = await create_redis_queue(consumer_name="bench", config=get_queue_config())
    meta = {"job_type": "debate", "organization": "acme", "owner": ""}
    await queue.enqueue_many([Job(payload={"i": i}, metadata=dict(meta)) for i in range(count)])
    done = 0
    while done < count:
        jobs = await queue.dequeue_many("bench", 500, 100)
        await queue.finish_many([(job.id, "completed", '{"answer":42}', 0) for job in jobs])
        done += len(jobs)
    await queue.close()


async def drain() -> tuple[int, float, int]:
    """Drain the ledger; return events stored, seconds, and webhook jobs enqueued."""
    from queue_app.queue import create_redis_queue, get_queue_config
    from queue_app.stores.ledger_writer import LedgerWriter

    config = get_queue_config()
    writer = LedgerWriter(config=config, block_ms=10)
    started, stored = time.perf_counter(), 0
    while batch := await writer.drain_once():
        stored += batch
    elapsed = time.perf_counter() - started
    await writer.close()
    probe = await create_redis_queue(consumer_name="probe", config=config)
    webhooks = (await probe.get_queue_stats("webhook_delivery"))["pending"]
    await probe.redis.delete(*await probe.redis.keys("*webhook_delivery*") or ["none"])
    await probe.close()
    return stored, elapsed, webhooks


def run(label: str) -> None:
    asyncio.run(finish_jobs(JOBS))
    stored, elapsed, webhooks = asyncio.run(drain())
    print(
        f"  {label}: {stored} ledger events in {elapsed:.2f} s = {stored / elapsed:,.0f} events/s,"
        f" {webhooks} webhook jobs enqueued"
    )


def main() -> None:
    workdir = tempfile.mkdtemp(prefix="bench-ledger-")
    try:
        with private_redis() as url:
            setup_django(url, workdir)
            from queue_app.models import WebhookEndpoint

            print(f"ledger writer, {JOBS} finished debate jobs (2 events each):")
            run("no webhook endpoint")
            for n in range(3):
                WebhookEndpoint.objects.create(
                    url=f"https://hooks{n}.example.com/",
                    secret=f"bench-secret-{n:04d}-xxxx",
                    organization="acme",
                    event_types=["job.completed"],
                )
            run("3 endpoints subscribed")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
