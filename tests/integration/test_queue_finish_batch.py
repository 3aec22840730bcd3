"""One ``finish_many`` call of many outcomes: the script defers its index moves, acks, minute
counts and checkpoint deletes to one command per key (finish.lua); the end state is what one
call per job leaves."""

from __future__ import annotations

import json
import time
from typing import Any

from queue_app.queue import FinishResult, Job, JobStatus, RedisStreamsQueue
from tests.round_trips import RoundTrips

STREAM = "aragora:queue:debates:stream"
HIGH = "aragora:queue:debates:stream:p5"
GROUP = "debate-workers"


async def _indexes(queue: RedisStreamsQueue, job_ids: list[str]) -> dict[str, set[str]]:
    """Return the status indexes each job is in."""
    found: dict[str, set[str]] = {job_id: set() for job_id in job_ids}
    for status in JobStatus:
        members = await queue.redis.zrange(f"aragora:queue:debates:idx:{status.value}", 0, -1)
        for member in members:
            if member in found:
                found[member].add(status.value)
    return found


async def _run_batch(queue: RedisStreamsQueue, outcomes: list[str]) -> tuple[list[Job], Any]:
    jobs = [Job(payload={"i": i}, priority=5 if i % 2 else 0) for i in range(len(outcomes))]
    await queue.enqueue_many(jobs[:1])
    for job in jobs[1:]:
        await queue.enqueue(job, priority=job.priority)
    started = await queue.dequeue_many("w", len(jobs), 100)
    assert {job.id for job in started} == {job.id for job in jobs}
    by_id = {job.id: job for job in started}
    assert await queue.save_checkpoint(jobs[0].id, "step", 1)
    rows = [
        (job.id, by_id[job.id].delivery_token or "", outcome, data, 60_000)
        for job, (outcome, data) in zip(
            jobs, [(o, '"r"' if o == "completed" else "boom") for o in outcomes], strict=True
        )
    ]
    return jobs, await queue.finish_many(rows)


async def test_one_call_of_every_outcome_leaves_what_one_call_per_job_leaves(
    queue: RedisStreamsQueue,
) -> None:
    outcomes = ["completed", "failed", "cancelled", "retry", "defer", "requeue", "completed"]
    jobs, written = await _run_batch(queue, outcomes)
    assert written == [FinishResult.WRITTEN] * len(jobs)
    expected = {
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "retry": "retrying",
        "defer": "pending",
        "requeue": "pending",
    }
    ids = [job.id for job in jobs]
    indexes = await _indexes(queue, ids)
    for job, outcome in zip(jobs, outcomes, strict=True):
        stored = await queue.get_status(job.id)
        assert stored is not None and stored.status.value == expected[outcome], outcome
        assert indexes[job.id] == {expected[outcome]}, (outcome, indexes[job.id])
    # Every delivered entry was acked and deleted; only the requeued job has a new entry.
    for stream in (STREAM, HIGH):
        assert (await queue.redis.xpending(stream, GROUP))["pending"] == 0
    requeued = jobs[outcomes.index("requeue")]
    left = [e for s in (STREAM, HIGH) for e in await queue.redis.xrange(s)]
    assert [fields["job_id"] for _, fields in left] == [requeued.id]
    assert await queue.redis.exists(f"aragora:queue:checkpoints:{jobs[0].id}") == 0
    stats = await queue.get_queue_stats()
    assert (stats["completed"], stats["failed"], stats["cancelled"]) == (2, 1, 1)
    assert (stats["retrying"], stats["pending"], stats["processing"]) == (1, 2, 0)
    [minute] = await queue.tracker.throughput("debates", minutes=1)
    if minute["minute"] == int(time.time() // 60):  # not across a minute's end
        counted = {key: minute[key] for key in ("completed", "failed", "cancelled", "retrying")}
        assert counted == {"completed": 2, "failed": 1, "cancelled": 1, "retrying": 1}
        ttl = await queue.redis.ttl(f"aragora:queue:debates:m:{minute['minute']}")
        assert 0 < ttl <= 7200


async def test_stale_rows_in_a_batch_are_fenced_and_change_nothing(
    queue: RedisStreamsQueue,
) -> None:
    jobs, written = await _run_batch(queue, ["completed", "completed"])
    assert written == [FinishResult.WRITTEN] * 2
    # The script itself, under tokens no delivery has (finish_many skips rows it does not run).
    ids = [job.id for job in jobs]
    rows = json.dumps([[job_id, "0-0/1", "failed", "late", 0] for job_id in ids])
    keys = [*queue.keys.jobs("debates", ids), *queue.keys.jobs("debates", ids, "checkpoints")]
    again = await queue._run("finish", "debates", [rows], keys)
    assert [int(reply) for reply in again] == [0, 0]
    indexes = await _indexes(queue, [job.id for job in jobs])
    assert all(found == {"completed"} for found in indexes.values())


async def test_the_call_after_a_batch_writes_at_once(queue: RedisStreamsQueue) -> None:
    """The library's functions share one Lua state: a batch's deferred writes end with it, and
    the next call (another function, another queue's settings) moves its index at once."""
    waiting = Job(payload={"waiting": True})
    await queue.enqueue(waiting, queue_name="other")
    jobs = [Job(payload={"i": i}) for i in range(3)]
    await queue.enqueue_many(jobs)
    started = await queue.dequeue_many("w", 3, 100)
    rows = [(job.id, job.delivery_token or "", "completed", "null", 0) for job in started]
    assert await queue.finish_many(rows) == [FinishResult.WRITTEN] * 3
    assert await queue.cancel(waiting.id)
    assert await queue.redis.zrange("aragora:queue:other:idx:cancelled", 0, -1) == [waiting.id]
    assert await queue.redis.zcard("aragora:queue:other:idx:pending") == 0
    assert (await _indexes(queue, [job.id for job in jobs])) == {
        job.id: {"completed"} for job in jobs
    }


async def test_finish_and_take_writes_outcomes_and_starts_jobs_in_one_round_trip(
    queue: RedisStreamsQueue, round_trips: RoundTrips
) -> None:
    first, second, third = (Job(payload={"i": i}) for i in range(3))
    for job in (first, second, third):
        await queue.enqueue(job)
    [running] = await queue.dequeue_many("w", 1, 100)
    stale = (second.id, "not-its-token", "completed", "null", 0)  # not a delivery of this worker
    round_trips.reset()
    results, taken = await queue.finish_and_take(
        [(running.id, running.delivery_token or "", "completed", '"done"', 0), stale], "w", 5
    )
    assert round_trips.count == 1
    assert results == [FinishResult.WRITTEN, FinishResult.FENCED]
    assert [job.id for job in taken] == [second.id, third.id]
    done = await queue.get_status(first.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.result == "done"
    assert set(queue.running) == {second.id, third.id}
    assert (await queue.redis.xpending(STREAM, GROUP))["pending"] == 2


async def test_finish_and_take_loads_the_library_a_restart_lost(queue: RedisStreamsQueue) -> None:
    for i in range(2):
        await queue.enqueue(Job(payload={"i": i}))
    [running] = await queue.dequeue_many("w", 1, 100)
    await queue.redis.function_flush()
    row = (running.id, running.delivery_token or "", "failed", "boom", 0)
    results, taken = await queue.finish_and_take([row], "w", 1)
    assert results == [FinishResult.WRITTEN] and len(taken) == 1
    failed = await queue.get_status(running.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.error == "boom"


async def test_finish_and_take_of_several_queues_starts_the_jobs_of_each(
    make_queue: Any,
) -> None:
    queue = await make_queue()
    await queue.enqueue(Job(payload={}), queue_name="debates")
    other = await queue.enqueue(Job(payload={}), queue_name="diagnostics")
    [running] = await queue.dequeue_many("w", 1, 100, ["debates"])
    row = (running.id, running.delivery_token or "", "completed", "null", 0)
    results, taken = await queue.finish_and_take([row], "w", 2, ["debates", "diagnostics"])
    assert results == [FinishResult.WRITTEN] and [job.id for job in taken] == [other]
