"""The ledger writer drains the Redis job events into JobRecord rows, in batches, with upserts."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone

from queue_app.models import HealingRecord, JobRecord, WebhookDelivery, WebhookEndpoint
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, create_redis_queue
from queue_app.queue.redis import LedgerEvent, LedgerReader, StoredJob
from queue_app.stores import ledger_upsert
from queue_app.stores.ledger_writer import LedgerWriter, prune, store_events
from tests.obs_support import run_manage
from tests.queue_ops import take

ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

pytestmark = pytest.mark.django_db(transaction=True)


def _closing[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run ``function`` in asgiref's thread and close its connection after (the thread lives on)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run)


@_closing
def rows() -> dict[str, JobRecord]:
    return {row.job_id: row for row in JobRecord.objects.all()}


async def _enqueue(
    queue: RedisStreamsQueue, count: int, queue_name: str | None = None
) -> list[str]:
    return [
        await queue.enqueue(
            Job(
                payload={"n": n},
                metadata={
                    "job_type": "debate",
                    "owner": "7",
                    "organization": "acme",
                    "trace_context": {"traceparent": TRACEPARENT},
                },
            ),
            queue_name=queue_name,
        )
        for n in range(count)
    ]


async def test_ledger_stores_enqueued_and_finished_jobs(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    done, failed, waiting = await _enqueue(queue, 3)
    assert [job.id for job in await take(queue, 2)] == [done, failed]
    await queue.complete(done, {"answer": 42})
    await queue.fail(failed, "agent crashed")
    writer = LedgerWriter(queue.redis, config=queue_config, block_ms=10)

    assert await writer.drain_once() == 5
    stored = await rows()
    assert {job_id: row.status for job_id, row in stored.items()} == {
        done: "completed",
        failed: "failed",
        waiting: "pending",
    }
    assert stored[done].result == {"answer": 42} and stored[done].attempts == 1
    assert stored[done].worker_id == "test-worker" and stored[done].completed_at is not None
    assert stored[failed].error == "agent crashed"
    assert stored[waiting].payload == {"n": 2} and stored[waiting].job_type == "debate"
    assert stored[waiting].trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert stored[waiting].organization == "acme" and stored[waiting].owner == "7"
    assert await LedgerReader(queue.redis, "probe", queue_config).backlog() == 0
    assert await writer.drain_once() == 0


async def test_ledger_stores_every_job_of_a_batch_call_from_entries_of_twenty(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    """A call of several jobs writes one ledger entry per status and 20 jobs; each gets its row."""
    stream = queue.keys.ledger("debates")
    jobs = [Job(payload={"n": n}, metadata={"job_type": "debate"}) for n in range(45)]
    ids = await queue.enqueue_many(jobs)
    assert await queue.redis.xlen(stream) == 3  # 20 + 20 + 5 jobs
    started = await take(queue, 45)
    failed = {job.id for job in started[::3]}
    await queue.finish_many(
        [
            (
                job.id,
                job.delivery_token or "",
                *(("failed", "boom") if job.id in failed else ("completed", "7")),
                0,
            )
            for job in started
        ]
    )
    assert await queue.redis.xlen(stream) == 3 + 2 + 1  # + 30 completed, 15 failed
    writer = LedgerWriter(queue.redis, config=queue_config, block_ms=10)

    assert await writer.drain_once() == 90  # events: 45 enqueued, 45 finished
    stored = await rows()
    assert {job_id: row.status for job_id, row in stored.items()} == {
        job_id: "failed" if job_id in failed else "completed" for job_id in ids
    }
    assert {stored[job_id].result for job_id in ids if job_id not in failed} == {7}
    assert await LedgerReader(queue.redis, "probe", queue_config).backlog() == 0
    assert await writer.drain_once() == 0


async def test_ledger_drains_in_batches_across_queues(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    await _enqueue(queue, 3)
    await _enqueue(queue, 2, "webhooks")
    writer = LedgerWriter(queue.redis, config=queue_config, batch_size=2, block_ms=10)
    drained = [await writer.drain_once() for _ in range(4)]
    # A batch reads up to batch_size events from each queue's stream.
    assert sum(drained) == 5 and drained[0] == 4 and drained[-1] == 0
    assert {row.queue for row in (await rows()).values()} == {"debates", "webhooks"}
    assert len(await rows()) == 5


@_closing
def _rename_ledger_table(old: str, new: str) -> None:
    with connection.schema_editor() as editor:
        editor.alter_db_table(JobRecord, old, new)


async def test_ledger_survives_database_error_and_catches_up(
    queue: RedisStreamsQueue, queue_config: QueueConfig, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await _enqueue(queue, 4)
    probe = LedgerReader(queue.redis, "probe", queue_config)
    writer = LedgerWriter(queue.redis, config=queue_config, block_ms=10)
    table = JobRecord._meta.db_table
    await _rename_ledger_table(table, "ledger_away")
    try:
        with caplog.at_level(logging.INFO, logger="queue_app.stores.ledger_writer"):
            assert await writer.drain_once() == 0
            await _enqueue(queue, 1)  # jobs go on while the database is down
            assert await writer.drain_once() == 0
            assert await probe.backlog() == 5
            assert writer.unavailable == "database"
    finally:
        await _rename_ledger_table("ledger_away", table)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "database unavailable" in warnings[0].getMessage()

    with caplog.at_level(logging.INFO, logger="queue_app.stores.ledger_writer"):
        stored = 0
        while drained := await writer.drain_once():
            stored += drained
    assert stored == 5 and await probe.backlog() == 0
    assert set(ids) < set(await rows()) and len(await rows()) == 5
    assert writer.unavailable == ""
    assert any("database is back" in r.getMessage() for r in caplog.records)


async def test_ledger_run_stores_events_until_stopped(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    stop = asyncio.Event()
    writer = LedgerWriter(queue.redis, config=queue_config, block_ms=50)
    task = asyncio.create_task(writer.run(stop))
    [job_id] = await _enqueue(queue, 1)
    deadline = time.monotonic() + 10
    while job_id not in await rows():
        assert time.monotonic() < deadline, "the running writer did not store the job"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_ledger_run_beside_a_busy_worker_stores_every_event_after_the_burst(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    stop, busy = asyncio.Event(), threading.Event()
    busy.set()
    spinner = threading.Thread(target=_spin_while, args=(busy,), daemon=True)
    spinner.start()  # the process runs jobs: the writer waits, at most defer_seconds
    writer = LedgerWriter(
        queue.redis, config=queue_config, batch_size=4, settle_seconds=0.05, defer_seconds=1.0
    )
    task = asyncio.create_task(writer.run(stop))
    ids = await _enqueue(queue, 9)
    deadline = time.monotonic() + 10
    try:
        while set(await rows()) != set(ids):
            assert time.monotonic() < deadline, "the deferring writer did not store the jobs"
            await asyncio.sleep(0.05)
    finally:
        busy.clear()
        spinner.join()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await LedgerReader(queue.redis, "probe", queue_config).backlog() == 0


def _spin_while(flag: threading.Event) -> None:
    while flag.is_set():
        sum(range(1000))


async def test_ledger_run_stores_waiting_events_once_stopped(
    queue: RedisStreamsQueue, queue_config: QueueConfig
) -> None:
    ids = await _enqueue(queue, 7)
    stop = asyncio.Event()
    stop.set()  # as a worker in --burst mode does when its queues are empty
    writer = LedgerWriter(queue.redis, config=queue_config, batch_size=3)
    await asyncio.wait_for(writer.run(stop), 5)
    assert set(await rows()) == set(ids)


def _event(job_id: str, entry: str, status: JobStatus | None) -> LedgerEvent:
    stored = None
    if status is not None:
        fields = {"id": job_id, "status": status.value, "queue": "debates", "max_attempts": "3"}
        stored = StoredJob({**fields, "payload": '{"q":1}', "created_at": "0"})
    return LedgerEvent("debates", entry, job_id, status.value if status else "completed", stored)


def test_ledger_keeps_newer_state_when_an_older_event_comes_late() -> None:
    store_events([_event("j-1", "1700000000100-0", JobStatus.COMPLETED)])
    # Another writer read the enqueue event earlier, when the job was still pending.
    store_events([_event("j-1", "1700000000009-5", JobStatus.PENDING)])
    record = JobRecord.objects.get(job_id="j-1")
    assert record.status == "completed" and record.ledger_entry == "1700000000100-0"
    store_events([_event("j-1", "1700000000100-1", JobStatus.FAILED)])
    assert JobRecord.objects.get(job_id="j-1").status == "failed"


def test_ledger_event_of_expired_job_only_creates_missing_rows() -> None:
    store_events([_event("j-1", "5-0", JobStatus.PENDING), _event("j-2", "6-0", None)])
    store_events([_event("j-1", "7-0", None)])
    assert JobRecord.objects.get(job_id="j-1").status == "pending"
    assert JobRecord.objects.get(job_id="j-1").payload == {"q": 1}
    bare = JobRecord.objects.get(job_id="j-2")
    assert (bare.status, bare.queue, bare.payload) == ("completed", "debates", {})


def test_ledger_prune_deletes_rows_past_retention() -> None:
    store_events([_event("old", "1-0", JobStatus.COMPLETED), _event("new", "2-0", None)])
    JobRecord.objects.filter(job_id="old").update(recorded_at=timezone.now() - timedelta(days=31))
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", secret="s" * 16)
    old = endpoint.deliveries.create(event="job.completed", job_id="old", status_code=200)
    WebhookDelivery.objects.filter(pk=old.pk).update(delivered_at=timezone.now() - timedelta(40))
    endpoint.deliveries.create(event="job.completed", job_id="new", status_code=200)
    healed = {"root_debate_id": "old", "attempt": 1, "reason": "error", "success": True}
    old_healing = timezone.now() - timedelta(days=31)
    HealingRecord.objects.create(
        heal_job_id="heal:old:1",
        debate_id="old",
        action="archive",
        created_at=old_healing,
        **healed,
    )
    HealingRecord.objects.create(
        heal_job_id="heal:new:1", debate_id="new", action="notify_user", **healed
    )
    assert prune(30) == 3
    assert list(HealingRecord.objects.values_list("debate_id", flat=True)) == ["new"]
    assert list(JobRecord.objects.values_list("job_id", flat=True)) == ["new"]
    assert list(endpoint.deliveries.values_list("job_id", flat=True)) == ["new"]


def _manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    done = run_manage(env, *args, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _enqueue_at(redis_url: str, count: int) -> None:
    queue = await create_redis_queue(config=QueueConfig(redis_url=redis_url))
    try:
        await _enqueue(queue, count)
    finally:
        await queue.close()


def _count_rows(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute("select count(*) from queue_app_jobrecord").fetchone()[0]


def test_queue_ledger_command_drains_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    database = tmp_path / "ledger.sqlite3"
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{database}"}
    env["ARAGORA_RUN_DIR"] = str(tmp_path)
    _manage(env, "migrate", "--noinput")
    asyncio.run(_enqueue_at(redis_url, 3))
    assert "stored 3 events" in _manage(env, "queue_ledger", "--once")
    assert _count_rows(database) == 3

    process = subprocess.Popen([sys.executable, "manage.py", "queue_ledger"], cwd=ROOT, env=env)
    try:
        asyncio.run(_enqueue_at(redis_url, 2))
        deadline = time.monotonic() + 20
        while _count_rows(database) < 5:
            assert time.monotonic() < deadline, "queue_ledger did not store the new jobs"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ledger_compares_stream_entries_as_numbers() -> None:
    store_events([_event("j-1", "1000-10", JobStatus.COMPLETED), _event("j-2", "1000-0", None)])
    # As text "999-0" > "1000-10" and "1000-9" > "1000-10": both are older events.
    store_events([_event("j-1", "999-0", JobStatus.PENDING)])
    store_events([_event("j-1", "1000-9", JobStatus.PROCESSING)])
    record = JobRecord.objects.get(job_id="j-1")
    assert (record.status, record.ledger_ms, record.ledger_seq) == ("completed", 1000, 10)
    store_events([_event("j-1", "1000-11", JobStatus.FAILED)])
    assert JobRecord.objects.get(job_id="j-1").ledger_entry == "1000-11"


def test_ledger_update_keeps_what_people_set() -> None:
    store_events([_event("j-1", "5-0", JobStatus.PENDING)])
    retried = timezone.now()
    JobRecord.objects.filter(job_id="j-1").update(
        manual_retries=2, last_retried_at=retried, archived_at=retried
    )
    store_events([_event("j-1", "6-0", JobStatus.COMPLETED)])
    record = JobRecord.objects.get(job_id="j-1")
    assert record.status == "completed" and record.manual_retries == 2
    assert record.last_retried_at == retried and record.archived_at == retried


def test_ledger_batch_larger_than_one_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_upsert, "MAX_ROWS", 3)
    store_events([_event(f"j-{n}", f"{n}-0", JobStatus.PENDING) for n in range(7)])
    later = [_event(f"j-{n}", f"{n}-1", JobStatus.COMPLETED) for n in range(7)]
    store_events([*later, _event("bare", "9-0", None)])
    statuses = dict(JobRecord.objects.values_list("job_id", "status"))
    assert statuses == {**{f"j-{n}": "completed" for n in range(7)}, "bare": "completed"}


def test_ledger_rewrites_every_column_for_a_new_job_under_a_used_id() -> None:
    store_events([_event("j-1", "5-0", JobStatus.COMPLETED), _event("j-2", "5-1", None)])
    # j-1's hash expired and an idempotency key made a new job j-1: other queue and creation.
    fields = {"id": "j-1", "status": "pending", "queue": "tasks", "created_at": "1700000000"}
    metadata = '{"job_type": "django_task", "organization": "acme"}'
    reused = StoredJob({**fields, "payload": '{"q":2}', "metadata": metadata})
    store_events(
        [
            LedgerEvent("tasks", "9-0", "j-1", "pending", reused),
            _event("j-2", "9-1", JobStatus.FAILED),  # a row once of an expired job's event
            _event("j-3", "9-2", JobStatus.PENDING),
        ]
    )
    one = JobRecord.objects.get(job_id="j-1")
    assert (one.queue, one.job_type, one.organization) == ("tasks", "django_task", "acme")
    assert (one.status, one.payload, one.created_at.timestamp()) == ("pending", {"q": 2}, 1.7e9)
    two = JobRecord.objects.get(job_id="j-2")
    assert (two.status, two.payload, two.max_attempts) == ("failed", {"q": 1}, 3)
    assert two.created_at is not None and two.created_at.timestamp() == 0
    assert JobRecord.objects.filter(ledger_entry__startswith="9-").count() == 3


def test_ledger_rows_keep_text_and_json_as_given() -> None:
    awkward = 'quote " backslash \\ braces {a,b} comma, NULL ü ✓'
    payload = json.dumps({"text": awkward, "n": [1, None]})
    fields = {"id": "j-1", "status": "failed", "queue": "debates", "created_at": "1700000000.5"}
    stored = StoredJob({**fields, "payload": payload, "error": awkward, "result": "null"})
    store_events(
        [LedgerEvent("debates", "3-0", "j-1", "failed", stored), _event("j-2", "3-1", None)]
    )
    store_events([LedgerEvent("debates", "4-0", "j-1", "failed", stored)])
    record = JobRecord.objects.get(job_id="j-1")
    assert record.payload == {"text": awkward, "n": [1, None]} and record.error == awkward
    assert record.result is None and record.created_at.timestamp() == 1700000000.5
    bare = JobRecord.objects.get(job_id="j-2")
    assert (bare.result, bare.started_at, bare.error) == (None, None, "")


def test_ledger_stores_a_job_whose_text_holds_nul() -> None:
    # PostgreSQL refuses NUL in text and JSON: the batch failed for good and the ledger stalled.
    text = "a\x00b, literal \\u0000"
    fields = {"id": "j-nul", "status": "failed", "queue": "debates", "error": text}
    payload = json.dumps({text: text})
    stored = StoredJob({**fields, "payload": payload, "result": json.dumps([text])})
    store_events(
        [LedgerEvent("debates", "5-0", "j-nul", "failed", stored), _event("j-2", "5-1", None)]
    )
    record = JobRecord.objects.get(job_id="j-nul")
    kept = text if connection.vendor == "sqlite" else text.replace("\x00", "\ufffd")
    assert (record.error, record.payload, record.result) == (kept, {kept: kept}, [kept])
    assert JobRecord.objects.filter(job_id="j-2").exists()


def test_ledger_migration_fills_entry_numbers() -> None:
    migration = importlib.import_module("queue_app.migrations.0007_jobrecord_ledger_order")
    for job_id, entry in (("a", "1700000000123-45"), ("b", "7"), ("c", "")):
        JobRecord.objects.create(
            job_id=job_id, queue="debates", status="completed", ledger_entry=entry
        )
    with connection.schema_editor() as editor:
        migration.fill_ledger_order(django_apps, editor)
    numbers = {r.job_id: (r.ledger_ms, r.ledger_seq) for r in JobRecord.objects.all()}
    assert numbers == {"a": (1700000000123, 45), "b": (7, 0), "c": (-1, -1)}
