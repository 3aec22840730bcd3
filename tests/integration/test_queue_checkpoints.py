"""Checkpoints of a running job and leases, on a real Redis."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue


async def test_checkpoints_are_fenced_kept_across_takeover_and_dropped_on_completion(
    make_queue,
) -> None:
    dead = await make_queue("dead-1")
    live = await make_queue("live-1")
    job_id = await dead.enqueue(Job(payload={}), queue_name="batch_explainability")
    assert await dead.save_checkpoint(job_id, "d1", {"ok": True}) is False  # not started yet
    await dead.dequeue("dead-1", timeout_ms=100, queue_name="batch_explainability")
    progress = {"processed": 1, "total": 3}
    assert await dead.save_checkpoint(job_id, "d1", {"ok": True}, progress) is True
    key = f"aragora:queue:checkpoints:{job_id}"
    assert await dead.redis.ttl(key) > 0
    stored = await dead.get_status(job_id)
    assert stored is not None and stored.progress == progress

    assert await live.claim_stale_jobs(0, ["batch_explainability"]) == 1
    taken = await live.dequeue("live-1", timeout_ms=100, queue_name="batch_explainability")
    assert taken is not None and taken.attempts == 2
    assert await dead.save_checkpoint(job_id, "d2", {"ok": True}) is False  # fenced off
    assert await live.get_checkpoints(job_id) == {"d1": {"ok": True}}
    assert await live.save_checkpoint(job_id, "d2", {"ok": False}) is True
    assert await live.complete(job_id, {"done": 2}) is True
    assert await live.redis.exists(key) == 0
    assert await live.get_checkpoints(job_id) == {}
    done = await live.get_status(job_id)
    assert done is not None and done.status is JobStatus.COMPLETED


async def test_checkpoints_of_failed_jobs_stay_for_a_retry(queue: RedisStreamsQueue) -> None:
    job_id = await queue.enqueue(Job(payload={}, max_attempts=1))
    await queue.dequeue("w", timeout_ms=100)
    await queue.save_checkpoint(job_id, "d1", {"ok": True})
    await queue.fail(job_id, "every item failed")
    assert await queue.get_checkpoints(job_id) == {"d1": {"ok": True}}


async def test_cluster_checkpoints_share_the_queues_slot(
    make_queue, queue_config: QueueConfig
) -> None:
    queue = await make_queue(config=replace(queue_config, cluster_keys=True))
    job_id = await queue.enqueue(Job(payload={}), queue_name="batch_explainability")
    await queue.dequeue("w", timeout_ms=100, queue_name="batch_explainability")
    await queue.save_checkpoint(job_id, "d1", 1)
    key = f"aragora:queue:{{batch_explainability}}:checkpoints:{job_id}"
    assert await queue.redis.exists(key) == 1
    other = await make_queue("other", config=replace(queue_config, cluster_keys=True))
    assert await other.get_checkpoints(job_id) == {"d1": 1}


async def test_lease_has_one_holder_until_released_or_expired(make_queue) -> None:
    first, second = await make_queue("a"), await make_queue("b")
    assert await first.acquire_lease("scan", "a", 5) is True
    assert await second.acquire_lease("scan", "b", 5) is False
    assert await first.acquire_lease("scan", "a", 5) is True  # renewed
    assert await second.release_lease("scan", "b") is False
    assert await first.release_lease("scan", "a") is True
    assert await second.acquire_lease("scan", "b", 0.2) is True
    await asyncio.sleep(0.4)
    assert await first.acquire_lease("scan", "a", 5) is True
    assert await first.redis.get("aragora:queue:lease:scan") == "a"
