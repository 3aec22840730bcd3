"""JobQueue contract, held against RedisStreamsQueue on a real redis-server."""

from __future__ import annotations

import asyncio
import time

import pytest

from queue_app.queue import InvalidJob, Job, JobStatus, QueueConfig, RedisStreamsQueue

STREAM = "aragora:queue:debates:stream"
GROUP = "debate-workers"


async def test_enqueue_records_pending_job_without_ttl(queue: RedisStreamsQueue) -> None:
    job = Job(payload={"n": 1})
    job_id = await queue.enqueue(job)
    r = queue.redis
    assert job_id == job.id
    assert await r.xlen(STREAM) == 1
    data = await r.hgetall(f"aragora:queue:job:{job_id}")
    assert data["status"] == "pending" and data["queue"] == "debates"
    assert await r.ttl(f"aragora:queue:job:{job_id}") == -1  # retention starts once terminal
    assert (await queue.get_queue_stats())["pending"] == 1


async def test_stream_key_and_group_are_the_reference_names(queue: RedisStreamsQueue) -> None:
    assert queue.stream_key == STREAM
    assert queue.group_name == GROUP
    groups = await queue.redis.xinfo_groups(STREAM)
    assert [g["name"] for g in groups] == [GROUP]


async def test_dequeue_marks_processing_and_complete_acks_and_deletes(
    queue: RedisStreamsQueue,
) -> None:
    job_id = await queue.enqueue(Job(payload={"n": 1}))
    job = await queue.dequeue("worker-a", timeout_ms=100)
    assert job is not None and job.id == job_id
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.PROCESSING, 1, "worker-a")
    assert job.started_at is not None
    assert (await queue.redis.xpending(STREAM, GROUP))["pending"] == 1

    assert await queue.complete(job_id, {"answer": 42}) is True
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED
    assert stored.result == {"answer": 42} and stored.completed_at is not None
    assert (await queue.redis.xpending(STREAM, GROUP))["pending"] == 0
    assert await queue.redis.xlen(STREAM) == 0
    assert await queue.complete(job_id, {"again": 1}) is False


async def test_dequeue_returns_none_after_timeout_on_empty_queue(queue: RedisStreamsQueue) -> None:
    started = time.monotonic()
    assert await queue.dequeue("w", timeout_ms=200) is None
    assert time.monotonic() - started >= 0.19


async def test_higher_priority_starts_before_backlog(queue: RedisStreamsQueue) -> None:
    backlog = [await queue.enqueue(Job(payload={"i": i})) for i in range(20)]
    low = await queue.enqueue(Job(payload={"low": True}), priority=-1)
    urgent = await queue.enqueue(Job(payload={"urgent": True}), priority=5)
    order = []
    for _ in range(22):
        job = await queue.dequeue("w", timeout_ms=100)
        assert job is not None
        order.append(job.id)
        await queue.complete(job.id)
    assert order[0] == urgent
    assert order[1:21] == backlog
    assert order[21] == low


async def test_each_priority_overtakes_lower_priority_backlogs(queue: RedisStreamsQueue) -> None:
    tens = [await queue.enqueue(Job(payload={"p": 10}), priority=10) for _ in range(5)]
    fifty = await queue.enqueue(Job(payload={"p": 50}), priority=50)
    minus = await queue.enqueue(Job(payload={"p": -5}), priority=-5)
    zero = await queue.enqueue(Job(payload={"p": 0}))
    order = [job.id for job in await queue.dequeue_many("w", 10, timeout_ms=100)]
    assert order == [fifty, *tens, zero, minus]
    assert await queue.redis.zrange("aragora:queue:debates:levels", 0, -1) == [
        "-5",
        "0",
        "10",
        "50",
    ]
    assert await queue.redis.xlen("aragora:queue:debates:stream:p10") == 5
    with pytest.raises(InvalidJob, match="priority"):
        await queue.enqueue(Job(payload={}), priority=10**6)


async def test_idle_consumer_wakes_for_a_new_priority(make_queue) -> None:
    waiter = await make_queue("waiter")
    producer = await make_queue("producer")
    task = asyncio.create_task(waiter.dequeue("w", timeout_ms=3000))
    await asyncio.sleep(0.1)
    job_id = await producer.enqueue(Job(payload={}), priority=7)
    started = time.monotonic()
    job = await task
    assert job is not None and job.id == job_id and job.priority == 7
    assert time.monotonic() - started < 1.0


async def test_delay_holds_job_until_due(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}), delay_seconds=1.0)
    assert await queue.dequeue("w", timeout_ms=300) is None
    assert (await queue.get_queue_stats())["delayed"] == 1
    started = time.monotonic()
    job = await queue.dequeue("w", timeout_ms=3000)
    waited = time.monotonic() - started
    assert job is not None and job.id == job_id
    assert 0.4 <= waited <= 1.6


async def test_queue_name_selects_its_own_stream(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}), queue_name="webhooks")
    assert await queue.redis.xlen("aragora:queue:webhooks:stream") == 1
    assert await queue.dequeue("w", timeout_ms=50) is None
    job = await queue.dequeue("w", timeout_ms=50, queue_name="webhooks")
    assert job is not None and job.id == job_id and job.queue == "webhooks"


async def test_fail_with_requeue_schedules_retry_through_delayed_set(
    queue: RedisStreamsQueue,
) -> None:
    job_id = await queue.enqueue(Job(payload={}, max_attempts=2))
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.fail(job_id, "temporary outage", requeue=True) is True
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.RETRYING
    assert stored.error == "temporary outage"
    due = await queue.redis.zscore("aragora:queue:debates:delayed", job_id)
    assert due is not None and due <= time.time() * 1000 + 200
    again = await queue.dequeue("w", timeout_ms=2000)
    assert again is not None and again.id == job_id and again.attempts == 2
    assert await queue.fail(job_id, "still down", requeue=True) is True
    final = await queue.get_status(job_id)
    assert final is not None and final.status is JobStatus.FAILED
    assert await queue.redis.zscore("aragora:queue:debates:dead", job_id) is not None


async def test_fail_without_requeue_is_final_and_dead_lettered(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.fail(job_id, "invalid input") is True
    stats = await queue.get_queue_stats()
    assert (stats["failed"], stats["dead_letters"], stats["processing"]) == (1, 1, 0)
    dead = await queue.tracker.list_dead_letters()
    assert [job.id for job in dead] == [job_id] and dead[0].error == "invalid input"


async def test_nack_requeue_puts_job_back_and_reject_fails_it(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.nack(job_id, requeue=True) is True
    job = await queue.dequeue("w", timeout_ms=100)
    assert job is not None and job.id == job_id and job.attempts == 2
    assert await queue.nack(job_id, requeue=False) is True
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.FAILED


async def test_ack_completes_job(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.ack(job_id) is True
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.COMPLETED


async def test_cancel_pending_job_is_never_run(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    assert await queue.cancel(job_id) is True
    assert await queue.dequeue("w", timeout_ms=100) is None
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.CANCELLED
    assert await queue.redis.xlen(STREAM) == 0
    assert await queue.cancel(job_id) is False


async def test_cancel_delayed_job_removes_it_from_delayed_set(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}), delay_seconds=0.2)
    assert await queue.cancel(job_id) is True
    assert await queue.redis.zcard("aragora:queue:debates:delayed") == 0
    assert await queue.dequeue("w", timeout_ms=500) is None


async def test_cancel_running_job_fences_worker_and_reports_lost(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.cancel(job_id) is True
    assert await queue.heartbeat() == [job_id]
    assert await queue.complete(job_id, "late result") is False
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.CANCELLED and stored.result is None
    assert (await queue.redis.xpending(STREAM, GROUP))["pending"] == 0
    stats = await queue.get_queue_stats()
    assert (stats["processing"], stats["cancelled"]) == (0, 1)


async def test_cancel_unknown_job_returns_false(queue: RedisStreamsQueue) -> None:
    assert await queue.cancel("no-such-job") is False


async def test_invalid_payload_is_rejected_and_nothing_is_stored(queue: RedisStreamsQueue) -> None:
    with pytest.raises(InvalidJob):
        await queue.enqueue(Job(payload={"when": object()}))
    with pytest.raises(InvalidJob):
        await queue.enqueue(Job(payload={}), queue_name="bad name")
    with pytest.raises(ValueError):
        await queue.enqueue(Job(payload={}), delay_seconds=-1)
    assert await queue.redis.xlen(STREAM) == 0
    assert (await queue.get_queue_stats())["pending"] == 0


async def test_enqueue_same_id_twice_adds_one_job(queue: RedisStreamsQueue) -> None:
    job = Job(payload={})
    await queue.enqueue(job)
    await queue.enqueue(Job(payload={"other": 1}, id=job.id))
    assert await queue.redis.xlen(STREAM) == 1
    stored = await queue.get_status(job.id)
    assert stored is not None and stored.payload == {}


async def test_enqueue_many_adds_every_job_in_order(queue: RedisStreamsQueue) -> None:
    jobs = [Job(payload={"i": i}) for i in range(1200)]
    ids = await queue.enqueue_many(jobs)
    assert ids == [job.id for job in jobs]
    assert await queue.redis.xlen(STREAM) == 1200
    got = await queue.dequeue_many("w", 1200, timeout_ms=100)
    assert [job.id for job in got] == ids


async def test_stats_have_reference_keys_and_exact_counts(queue: RedisStreamsQueue) -> None:
    ids = [await queue.enqueue(Job(payload={"i": i})) for i in range(5)]
    for _ in ids[:3]:
        await queue.dequeue("w", timeout_ms=100)
    await queue.complete(ids[0])
    await queue.fail(ids[1], "boom")
    await queue.cancel(ids[3])
    stats = await queue.get_queue_stats()
    expected = {
        "stream_length": 2,
        "pending_in_group": 1,
        "pending": 1,
        "processing": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
        "retrying": 0,
    }
    assert {key: stats[key] for key in expected} == expected


async def test_retention_starts_when_a_job_is_terminal(queue: RedisStreamsQueue) -> None:
    """Waiting jobs (pending, delayed, retrying, running) never expire; finished ones do."""
    ids = [await queue.enqueue(Job(payload={"i": i})) for i in range(5)]
    delayed = await queue.enqueue(Job(payload={}), delay_seconds=60)
    for _ in range(4):
        await queue.dequeue("w", timeout_ms=100)
    await queue.complete(ids[0])
    await queue.fail(ids[1], "x", requeue=True)
    await queue.fail(ids[2], "x")
    await queue.cancel(ids[4])
    ttl = queue.config.job_ttl_seconds
    expected = {ids[0]: ttl, ids[1]: -1, ids[2]: ttl, ids[3]: -1, ids[4]: ttl, delayed: -1}
    for job_id, want in expected.items():
        got = await queue.redis.ttl(f"aragora:queue:job:{job_id}")
        assert (got == -1) if want == -1 else (0 < got <= want), (job_id, got)
    revived = await queue.revive(ids[2])
    assert revived and await queue.redis.ttl(f"aragora:queue:job:{ids[2]}") == -1


async def test_waiting_index_entries_outlive_the_retention(
    queue: RedisStreamsQueue,
) -> None:
    """Promotion prunes index entries older than the retention only for terminal statuses."""
    pending = await queue.enqueue(Job(payload={}))
    done = await queue.enqueue(Job(payload={}))
    old = 1  # score in ms: far older than any retention
    r = queue.redis
    await r.zadd("aragora:queue:debates:idx:pending", {pending: old})
    await r.zadd("aragora:queue:debates:idx:completed", {done: old})
    await queue.promote(["debates"])
    assert await r.zscore("aragora:queue:debates:idx:pending", pending) == old
    assert await r.zscore("aragora:queue:debates:idx:completed", done) is None


async def test_cluster_keys_are_hash_tagged_and_status_needs_no_queue(
    make_queue, queue_config: QueueConfig
) -> None:
    from dataclasses import replace

    queue = await make_queue(config=replace(queue_config, cluster_keys=True))
    job_id = await queue.enqueue(Job(payload={}), queue_name="webhooks")
    assert queue.stream_key == "aragora:queue:{debates}:stream"
    assert await queue.redis.xlen("aragora:queue:{webhooks}:stream") == 1
    assert await queue.redis.exists(f"aragora:queue:{{webhooks}}:job:{job_id}") == 1
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.queue == "webhooks"
    job = await queue.dequeue("w", timeout_ms=100, queue_name="webhooks")
    assert job is not None and await queue.complete(job.id) is True


async def test_cluster_status_reads_every_declared_queue_in_one_round_trip(
    make_queue, queue_config: QueueConfig, round_trips
) -> None:
    from dataclasses import replace

    declared = frozenset({"debates", "webhooks", "gauntlet"})
    config = replace(queue_config, cluster_keys=True, queues=declared)
    queue = await make_queue(config=config)
    job_id = await queue.enqueue(Job(payload={}), queue_name="gauntlet")
    await queue.ping()  # connects the pool (the enqueue went on the lane's own connection)
    round_trips.reset()
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.queue == "gauntlet" and round_trips.count == 1
    later = await make_queue(config=replace(config, queues=frozenset({"debates"})))
    found = await later.get_status(job_id)  # a queue no longer declared: found in `P queues`
    assert found is not None and found.queue == "gauntlet"
    assert await later.get_status("no-such-job") is None


async def test_progress_is_recorded_for_the_running_delivery_only(
    queue: RedisStreamsQueue,
) -> None:
    job_id = await queue.enqueue(Job(payload={}))
    assert await queue.set_progress(job_id, {"done": 1}) is False
    await queue.dequeue("w", timeout_ms=100)
    assert await queue.set_progress(job_id, {"done": 3, "of": 10}) is True
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.progress == {"done": 3, "of": 10}
    await queue.complete(job_id)
    assert await queue.set_progress(job_id, {"done": 10}) is False


async def test_delay_beyond_job_retention_is_refused(queue: RedisStreamsQueue) -> None:
    with pytest.raises(InvalidJob, match="retention"):
        await queue.enqueue(Job(payload={}), delay_seconds=8 * 86400)
    assert (await queue.get_queue_stats())["delayed"] == 0


async def test_dequeue_without_wait_works_after_redis_lost_its_library_and_data(
    queue: RedisStreamsQueue,
) -> None:
    await queue.redis.flushall()
    await queue.redis.function_flush()
    job_id = await queue.enqueue(Job(payload={}))
    assert await queue.redis.smembers("aragora:queue:queues") == {"debates"}
    await queue.redis.function_flush()
    job = await queue.dequeue("w", timeout_ms=0)
    assert job is not None and job.id == job_id


async def test_enqueue_writes_levels_and_registry_only_for_a_missing_stream(
    queue: RedisStreamsQueue,
) -> None:
    """An existing stream has its level and registry entry; a lost one gets both back at once."""

    async def writes() -> tuple[int, int]:
        stats = await queue.redis.info("commandstats")
        return tuple(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("sadd", "zadd"))

    await queue.enqueue(Job(payload={}))
    sadd, zadd = await writes()
    for _ in range(5):
        await queue.enqueue(Job(payload={}))
    assert await writes() == (sadd, zadd + 5)  # the pending index only

    await queue.redis.flushall()  # keys lost, the library and the process's caches kept
    job_id = await queue.enqueue(Job(payload={}))
    assert await queue.redis.smembers("aragora:queue:queues") == {"debates"}
    assert await queue.redis.zrange("aragora:queue:debates:levels", 0, -1) == ["0"]
    assert [g["name"] for g in await queue.redis.xinfo_groups(STREAM)] == [GROUP]
    job = await queue.dequeue("w", timeout_ms=1000)
    assert job is not None and job.id == job_id


async def test_one_batch_of_several_priorities_makes_each_level_and_its_group(
    queue: RedisStreamsQueue,
) -> None:
    """The enqueue script checks a level once per run of rows of that level, not once per call."""
    priorities = [0, 7, 7, 3, 7, 0]
    jobs = [Job(payload={"i": i}, priority=p) for i, p in enumerate(priorities)]
    await queue.enqueue_many(jobs)
    levels = await queue.redis.zrange("aragora:queue:debates:levels", 0, -1)
    assert sorted(levels, key=int) == ["0", "3", "7"]
    for level in ("3", "7"):
        groups = await queue.redis.xinfo_groups(f"{STREAM}:p{level}")
        assert [g["name"] for g in groups] == [GROUP]
    started = await queue.dequeue_many("w", len(jobs), 100)
    assert [job.priority for job in started] == sorted(priorities, reverse=True)
