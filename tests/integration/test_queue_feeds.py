"""Ledger event streams, worker registry and per-minute throughput counters."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from queue_app.queue import Job, JobStatus, RedisStreamsQueue
from queue_app.queue.redis import LedgerReader, WorkerRegistry


async def test_ledger_carries_enqueue_and_terminal_events_until_acked(
    queue: RedisStreamsQueue,
) -> None:
    done = await queue.enqueue(Job(payload={"a": 1}))
    failed = await queue.enqueue(Job(payload={"b": 2}))
    await queue.dequeue_many("w", 2, timeout_ms=100)
    await queue.complete(done, {"ok": True})
    await queue.fail(failed, "broken")
    reader = LedgerReader(queue.redis, "ledger-1", queue.config)
    events = await reader.read(count=10, block_ms=10)
    assert [(e.job_id, e.status) for e in events] == [
        (done, "pending"),
        (failed, "pending"),
        (done, "completed"),
        (failed, "failed"),
    ]
    assert events[2].job is not None and events[2].job.result == {"ok": True}
    assert events[3].job is not None and events[3].job.status is JobStatus.FAILED
    # Both events of a job carry its data as stored now.
    assert events[0].job is not None and events[0].job.result == {"ok": True}
    assert await reader.read(count=10, block_ms=10) == []

    reader.rewind()
    assert len(await reader.read(count=10, block_ms=10)) == 4
    restarted = LedgerReader(queue.redis, "ledger-1", queue.config)
    assert len(await restarted.read(count=10, block_ms=10)) == 4
    await restarted.ack(events[1:3])
    assert await restarted.backlog() == 2
    await restarted.ack([events[0], events[3]])
    assert await restarted.backlog() == 0
    assert await LedgerReader(queue.redis, "ledger-1", queue.config).read(block_ms=10) == []


async def test_registry_lists_live_workers_and_forgets_expired(queue: RedisStreamsQueue) -> None:
    registry = WorkerRegistry(queue.redis, queue.config)
    await registry.register({"worker_id": "w-1", "pid": 10, "queues": ["debates"]}, 30)
    await registry.register({"worker_id": "w-2", "pid": 11, "queues": ["webhooks"]}, 1)
    workers = await registry.list_workers()
    assert [w["worker_id"] for w in workers] == ["w-1", "w-2"]
    assert workers[0]["queues"] == ["debates"] and workers[0]["heartbeat_age_seconds"] < 5
    await queue.redis.delete("aragora:queue:worker:w-2")
    assert [w["worker_id"] for w in await registry.list_workers()] == ["w-1"]
    assert await queue.redis.zrange("aragora:queue:workers", 0, -1) == ["w-1"]
    await registry.unregister("w-1")
    assert await registry.list_workers() == []


async def test_throughput_counts_finished_jobs_per_minute(queue: RedisStreamsQueue) -> None:
    ids = [await queue.enqueue(Job(payload={})) for _ in range(3)]
    await queue.dequeue_many("w", 3, timeout_ms=100)
    await queue.complete(ids[0])
    await queue.complete(ids[1])
    await queue.fail(ids[2], "x", requeue=True)
    rows = await queue.tracker.throughput("debates", minutes=5)
    assert len(rows) == 5 and rows[-1]["minute"] == int(time.time() // 60)
    assert sum(r["completed"] for r in rows) == 2
    assert sum(r["retrying"] for r in rows) == 1
    ttl = await queue.redis.ttl(f"aragora:queue:debates:m:{rows[-1]['minute']}")
    assert 0 < ttl <= 7200


async def test_tracker_reads_raw_bytes_client(redis_url: str, queue: RedisStreamsQueue) -> None:
    await queue.enqueue(Job(payload={}))
    raw = aioredis.from_url(redis_url)
    try:
        reader = LedgerReader(raw, "ledger-raw", queue.config)
        [event] = await reader.read(block_ms=10)
        assert event.status == "pending" and event.job is not None
        registry = WorkerRegistry(raw, queue.config)
        await registry.register({"worker_id": "b"}, 10)
        assert [w["worker_id"] for w in await registry.list_workers()] == ["b"]
    finally:
        await raw.aclose()


async def test_ledger_feed_can_be_turned_off(make_queue, queue_config) -> None:
    from dataclasses import replace

    queue = await make_queue(config=replace(queue_config, ledger_max_len=0))
    job_id = await queue.enqueue(Job(payload={}))
    await queue.dequeue("w", timeout_ms=100)
    await queue.complete(job_id)
    assert await queue.redis.exists("aragora:queue:debates:ledger") == 0
