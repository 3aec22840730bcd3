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
    [entry] = await waiter.redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert entry["times_delivered"] == 1  # the read, not the take again: no false redelivery
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


async def test_entry_deleted_unacked_between_read_and_take_is_skipped(make_queue) -> None:
    """The consumer still holds the id of a deleted entry: it has no fields, nothing to start."""
    waiter = await make_queue("waiter")
    cursor = await last_delivered(waiter)
    gone = await waiter.enqueue(Job(payload={}))
    kept = await waiter.enqueue(Job(payload={}))
    reply = await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=2)
    entries = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
    await waiter.redis.xdel(STREAM, entries[0][0])

    reply = await take_after_read(waiter, cursor, count=2)
    assert [job[0] for job in reply[3:]] == [kept]
    assert await waiter.redis.hget(f"aragora:queue:job:{gone}", "status") == "pending"


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
    # One started of three: the stream ran dry, so the cursor (its last entry) comes back.
    [(last, _)] = await waiter.redis.xrevrange(STREAM, count=1)
    assert reply[2] == ["0", last]


async def test_take_of_as_many_jobs_as_asked_returns_no_cursors(queue: RedisStreamsQueue) -> None:
    """The worker takes again at once, without blocking: it needs no cursors."""
    for _ in range(3):
        await queue.enqueue(Job(payload={}))
    args = [queue.consumer_name, "w", 2]
    reply = await SCRIPTS["take"](queue.redis, *queue.script_call("take", "debates", args))
    assert len(reply[3:]) == 2 and reply[2] == []


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


async def empty_take(queue: RedisStreamsQueue) -> list[str]:
    """Run take.lua with no cursor and nothing new to read; return the cursors it answers."""
    args = [queue.consumer_name, "w", 1]
    reply = await SCRIPTS["take"](queue.redis, *queue.script_call("take", "debates", args))
    assert reply[3:] == []
    return [str(item) for item in reply[2]]


async def test_empty_take_cursor_is_past_the_running_jobs_of_this_consumer(make_queue) -> None:
    waiter = await make_queue("waiter")
    await waiter.enqueue(Job(payload={}))
    running = await waiter.dequeue("w", timeout_ms=50)
    assert running is not None and running.delivery_token is not None
    entry = running.delivery_token.split("/")[0]
    assert await empty_take(waiter) == ["0", entry]  # the read found nothing: the stream's last

    new = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=1)  # the blocking read
    reply = await take_after_read(waiter, entry, count=3)
    assert [job[0] for job in reply[3:]] == [new]  # the running job is not started again
    stored = await waiter.get_status(running.id)
    assert stored is not None and stored.attempts == 1 and stored.status is JobStatus.PROCESSING


async def test_empty_take_cursor_of_an_empty_stream_is_zero(make_queue) -> None:
    waiter = await make_queue("waiter")
    await waiter.enqueue(Job(payload={}))
    done = await waiter.dequeue("w", timeout_ms=50)
    assert done is not None and await waiter.complete(done.id) is True
    assert await waiter.redis.xlen(STREAM) == 0
    assert await empty_take(waiter) == ["0", "0-0"]

    new = await waiter.enqueue(Job(payload={}))
    await waiter.redis.xreadgroup(GROUP, "waiter", {STREAM: ">"}, count=1)
    reply = await take_after_read(waiter, "0-0")
    assert [job[0] for job in reply[3:]] == [new]


async def test_empty_take_cursor_is_the_last_entry_its_read_returned(make_queue) -> None:
    """An entry read and dead-lettered (its job expired) starts nothing: the cursor is its id."""
    waiter = await make_queue("waiter")
    expired = await waiter.enqueue(Job(payload={}))
    [(entry, _)] = await waiter.redis.xrange(STREAM)
    await waiter.redis.delete(f"aragora:queue:job:{expired}")
    assert await empty_take(waiter) == ["0", entry]  # the stream is empty again: not 0-0
    assert await waiter.redis.zscore("aragora:queue:debates:dead", expired) is not None


async def test_after_a_take_ran_the_queue_dry_the_next_take_waits_at_once(
    make_queue, round_trips: RoundTrips
) -> None:
    """No take that would find nothing: the blocking read and its take, one round trip."""
    waiter = await make_queue("waiter")
    producer = await make_queue("producer")
    await producer.enqueue(Job(payload={}))
    assert len(await waiter.dequeue_many("w", 3, timeout_ms=100)) == 1  # one of three: dry
    round_trips.reset()
    assert await waiter.finish_and_take([], "w", 2) == ([], [])  # nothing sent
    assert round_trips.count == 0
    task = asyncio.create_task(waiter.dequeue_many("w", 2, timeout_ms=3000))
    await asyncio.sleep(0.1)
    job_id = await producer.enqueue(Job(payload={}))
    assert [job.id for job in await task] == [job_id]
    assert round_trips.count == 2  # the waiter's pipeline and the enqueue
