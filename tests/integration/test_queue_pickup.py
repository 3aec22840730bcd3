"""An idle consumer's pickup: the blocking read and the take that starts what it delivered.

``dequeue`` on an empty queue sends a blocking XREADGROUP and, in the same pipeline, the take
script with the cursors of its last take; the script starts the entries the read delivered to
this consumer. Between the read and the script other clients may run (cancel, claim): the script
re-checks each entry as start.lua does, so a job cancelled in between never starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from queue_app.queue import Job, JobStatus, RedisStreamsQueue
from queue_app.queue.redis.scripts import SCRIPTS
from tests.round_trips import RoundTrips

STREAM = "aragora:queue:debates:stream"
GROUP = "debate-workers"


async def last_delivered(queue: RedisStreamsQueue) -> str:
    [group] = await queue.redis.xinfo_groups(STREAM)
    return str(group["last-delivered-id"])


async def take_after_read(queue: RedisStreamsQueue, cursor: str, count: int = 1) -> list[Any]:
    """Run take.lua for ``queue``'s consumer with the cursor of priority 0; return its reply."""
    args = [queue.consumer_name, "w", count, "0", cursor]
    return await SCRIPTS["take"](queue.redis, *queue.script_call("take", "debates", args))


async def test_blocked_dequeue_starts_the_job_in_the_round_trip_of_its_read(
    make_queue, round_trips: RoundTrips
) -> None:
    waiter = await make_queue("waiter")
    producer = await make_queue("producer")
    assert await waiter.dequeue("w", timeout_ms=50) is None  # a take that found nothing
    task = asyncio.create_task(waiter.dequeue("w", timeout_ms=3000))
    await asyncio.sleep(0.1)
    round_trips.reset()
    job_id = await producer.enqueue(Job(payload={}))
    job = await task
    assert round_trips.count == 1  # the enqueue; the waiter's pipeline was sent before
    assert job is not None and job.id == job_id and job.attempts == 1
    stored = await waiter.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.PROCESSING
    assert await waiter.complete(job_id) is True


async def test_job_cancelled_between_read_and_take_never_starts(make_queue) -> None:
    waiter = await make_queue("waiter")
    cursor = await last_delivered(waiter)
    job_id = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=1)  # the blocking read
    assert await waiter.cancel(job_id) is True

    reply = await take_after_read(waiter, cursor)
    assert reply[3:] == []
    stored = await waiter.get_status(job_id)
    assert stored is not None and stored.status is JobStatus.CANCELLED
    assert (await waiter.redis.xpending(STREAM, GROUP))["pending"] == 0


async def test_take_after_read_starts_only_this_consumers_entries_past_its_cursor(
    make_queue,
) -> None:
    waiter = await make_queue("waiter")
    earlier = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=1)  # before the cursor
    cursor = await last_delivered(waiter)
    other = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "someone-else", {STREAM: ">"}, count=1)
    mine = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=1)

    reply = await take_after_read(waiter, cursor, count=3)
    assert [job[0] for job in reply[3:]] == [mine]
    for job_id, status in ((earlier, "pending"), (other, "pending"), (mine, "processing")):
        assert await waiter.redis.hget(f"aragora:queue:job:{job_id}", "status") == status
    assert reply[2] == []  # it started one: no cursors (the worker will not block)


async def test_entry_read_with_no_free_slot_left_is_started_by_the_next_dequeue(
    make_queue,
) -> None:
    waiter = await make_queue("waiter")
    await waiter.enqueue(Job(payload={}), priority=5)  # priority 5 in use: a second stream
    done = await waiter.dequeue("w", timeout_ms=50)
    assert done is not None and await waiter.complete(done.id) is True
    assert await waiter.dequeue("w", timeout_ms=50) is None  # cursors of both streams
    low = await waiter.enqueue(Job(payload={}))
    high = await waiter.enqueue(Job(payload={}), priority=5)

    # The read returns one entry of each stream; with one free slot the take starts one.
    [first] = await waiter._read_and_take("w", 1, ["debates"], 100)
    second = await waiter.dequeue("w", timeout_ms=50)
    assert first.id == high and second is not None and second.id == low
    assert second.attempts == 1 and await waiter.dequeue("w", timeout_ms=50) is None
