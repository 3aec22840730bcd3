"""Takeover of stale deliveries, fencing, poison pills, garbage entries and Redis outages."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from queue_app.queue import (
    Job,
    JobStatus,
    QueueConfig,
    QueueConnectionError,
    RedisStreamsQueue,
    create_redis_queue,
)

STREAM = "aragora:queue:debates:stream"
GROUP = "debate-workers"


async def test_claim_hands_stale_delivery_to_the_claimers_next_dequeue(make_queue) -> None:
    dead = await make_queue("dead-1")
    live = await make_queue("live-1")
    job_id = await dead.enqueue(Job(payload={}))
    assert (await dead.dequeue("dead-1", timeout_ms=100)).id == job_id

    assert await live.claim_stale_jobs(idle_ms=0) == 1
    job = await live.dequeue("live-1", timeout_ms=100)
    assert job is not None and job.id == job_id and job.attempts == 2
    [entry] = await live.redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert entry["consumer"] == "live-1" and entry["times_delivered"] == 2

    assert await dead.complete(job_id, "stale result") is False
    assert await live.complete(job_id, "fresh result") is True
    stored = await live.get_status(job_id)
    assert stored is not None and stored.result == "fresh result"
    assert (await live.redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_heartbeat_keeps_running_delivery_from_being_claimed(make_queue) -> None:
    slow = await make_queue("slow-1")
    other = await make_queue("other-1")
    job_id = await slow.enqueue(Job(payload={}))
    await slow.dequeue("slow-1", timeout_ms=100)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await slow.heartbeat() == []
        assert await other.claim_stale_jobs(idle_ms=100) == 0
    assert await slow.complete(job_id) is True


async def test_claim_takes_only_deliveries_idle_past_threshold(make_queue) -> None:
    first = await make_queue("first")
    second = await make_queue("second")
    await first.enqueue(Job(payload={}))
    await first.dequeue("first", timeout_ms=100)
    assert await second.claim_stale_jobs(idle_ms=60_000) == 0
    await asyncio.sleep(0.12)
    assert await second.claim_stale_jobs(idle_ms=100) == 1


async def test_poison_pill_goes_to_dead_letters_after_max_attempts(make_queue) -> None:
    queues = [await make_queue(f"crashy-{i}") for i in range(3)]
    job_id = await queues[0].enqueue(Job(payload={}, max_attempts=2))
    assert (await queues[0].dequeue("crashy-0", timeout_ms=100)).attempts == 1
    assert await queues[1].claim_stale_jobs(idle_ms=0) == 1
    assert (await queues[1].dequeue("crashy-1", timeout_ms=100)).attempts == 2
    assert await queues[2].claim_stale_jobs(idle_ms=0) == 1
    assert await queues[2].dequeue("crashy-2", timeout_ms=100) is None
    stored = await queues[2].get_status(job_id)
    assert stored is not None and stored.status is JobStatus.FAILED
    assert "max_attempts" in (stored.error or "")
    assert await queues[2].redis.zscore("aragora:queue:debates:dead", job_id) is not None
    assert (await queues[2].redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_garbage_entry_is_dead_lettered_and_next_job_runs(queue: RedisStreamsQueue) -> None:
    entry = await queue.redis.xadd(STREAM, {"garbage": "\x00not a job"})
    job_id = await queue.enqueue(Job(payload={"real": True}))
    job = await queue.dequeue("w", timeout_ms=200)
    if job is None:
        job = await queue.dequeue("w", timeout_ms=200)
    assert job is not None and job.id == job_id
    dead = await queue.tracker.list_dead_letters()
    assert [d.id for d in dead] == [f"entry-{entry}"]
    assert dead[0].error == "undecodable stream entry"
    assert dead[0].payload == {"garbage": "\x00not a job"}
    assert (await queue.redis.xpending(STREAM, GROUP))["pending"] == 1


async def test_entry_of_unknown_job_id_is_dead_lettered(queue: RedisStreamsQueue) -> None:
    await queue.redis.xadd(STREAM, {"job_id": "ghost"})
    assert await queue.dequeue("w", timeout_ms=100) is None
    ghost = await queue.get_status("ghost")
    assert ghost is not None and ghost.status is JobStatus.FAILED
    assert ghost.error == "job data missing or expired"


async def test_tracker_works_without_decoded_responses(make_queue) -> None:
    queue = await make_queue("raw", decode=False)
    job_id = await queue.enqueue(Job(payload={"x": "é"}))
    job = await queue.dequeue("w", timeout_ms=100)
    assert job is not None and job.payload == {"x": "é"}
    await queue.complete(job_id, [1, 2])
    stored = await queue.tracker.get_job(job_id)
    assert stored is not None and stored.result == [1, 2]
    assert (await queue.tracker.get_counts_by_status())["completed"] == 1


async def test_tracker_lists_newest_first_by_status(queue: RedisStreamsQueue) -> None:
    ids = []
    for i in range(5):
        ids.append(await queue.enqueue(Job(payload={"i": i})))
        await asyncio.sleep(0.002)
    await queue.dequeue("w", timeout_ms=100)
    await queue.complete(ids[0])
    pending = await queue.tracker.list_jobs(status=JobStatus.PENDING, limit=3)
    assert [job.id for job in pending] == ids[:0:-1][:3]
    everything = await queue.tracker.list_jobs(limit=10)
    assert everything[0].id == ids[0] and len(everything) == 5
    assert await queue.tracker.list_jobs(status="completed", queue_name="other") == []


async def test_create_redis_queue_raises_connection_error_when_unreachable() -> None:
    config = QueueConfig(redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ConnectionError):
        await create_redis_queue(config=config)


async def test_redis_killed_mid_dequeue_raises_connection_error_and_keeps_state(
    redis_server_factory,
) -> None:
    server = redis_server_factory(appendonly=True)
    config = QueueConfig(redis_url=server.url)
    queue = await create_redis_queue(consumer_name="c", config=config)
    await queue.redis.config_set("appendfsync", "always")
    ids = [await queue.enqueue(Job(payload={"i": i})) for i in range(3)]
    running = await queue.dequeue("w", timeout_ms=100)
    assert running is not None
    blocked = asyncio.create_task(queue.dequeue_many("w", 10, timeout_ms=5000, queue_names=["x"]))
    await asyncio.sleep(0.2)
    server.kill()
    with pytest.raises(QueueConnectionError) as raised:
        await blocked
    assert isinstance(raised.value, ConnectionError)
    with pytest.raises(ConnectionError):
        await queue.get_queue_stats()
    await queue.close()

    server.restart()
    client = aioredis.from_url(server.url, decode_responses=True)
    try:
        after = RedisStreamsQueue(client, "c2", config)
        stats = await after.get_queue_stats()
        assert (stats["pending"], stats["processing"], stats["stream_length"]) == (2, 1, 3)
        assert await after.claim_stale_jobs(idle_ms=0) == 1
        seen: set[str] = set()
        for _ in range(5):
            seen |= {job.id for job in await after.dequeue_many("w2", 10, timeout_ms=200)}
        assert seen == set(ids)
    finally:
        await client.aclose()
