"""A take whose reply never came started its job in Redis: the consumer's next take starts it again.

The reply is lost for real: a script of another client keeps Redis busy past the client's socket
timeout, so the take times out on the client while it still waits, unread, on the server, which
runs it once the busy script ends. The client either retries the call (redis-py's default
policy: the retry finds nothing new and returns no job, hiding the loss) or, with no retries,
raises. Before this, such a job stayed ``processing`` under a token nobody held until a stale
claim took it over, ``claim_idle_ms`` later (60 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from queue_app.queue import (
    FinishResult,
    Job,
    JobStatus,
    QueueConfig,
    QueueConnectionError,
    RedisStreamsQueue,
)

#: Keeps Redis running one script for ARGV[1] ms: other clients' commands wait, unread.
BUSY = """
local function now() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local start = now()
while now() - start < tonumber(ARGV[1]) do end
return 1
"""


@pytest.fixture(params=["default retries", "no retries"])
async def timing_out_queue(
    request: pytest.FixtureRequest, queue_config: QueueConfig
) -> AsyncIterator[RedisStreamsQueue]:
    """Return a queue whose client gives up on a reply after 0.3 s."""
    retry = {} if request.param == "default retries" else {"retry": Retry(NoBackoff(), 0)}
    client = aioredis.from_url(
        queue_config.redis_url, decode_responses=True, socket_timeout=0.3, **retry
    )
    queue = RedisStreamsQueue(client, "consumer-1", queue_config)
    await queue.ensure_queue("debates")
    assert await queue.dequeue_many("w", 1, timeout_ms=0) == []  # the take lane is connected
    yield queue
    await queue.close()
    await client.aclose()


async def test_job_of_a_take_whose_reply_was_lost_runs_at_the_next_take(
    timing_out_queue: RedisStreamsQueue, redis_url: str
) -> None:
    queue = timing_out_queue
    job_id = await queue.enqueue(Job(payload={"n": 1}))
    async with aioredis.from_url(redis_url) as other:
        busy = asyncio.create_task(other.eval(BUSY, 0, "1000"))
        await asyncio.sleep(0.2)  # the busy script runs
        with contextlib.suppress(QueueConnectionError):  # raised when the client does not retry
            assert await queue.dequeue_many("w", 1, timeout_ms=0) == []
        await busy
    # The lost take started the job in Redis; nobody runs it.
    status = await queue.get_status(job_id)
    assert status is not None and status.status is JobStatus.PROCESSING
    assert job_id not in queue.running

    [job] = await queue.dequeue_many("w", 1, timeout_ms=0)

    assert (job.id, job.attempts) == (job_id, 2)
    assert job_id in queue.running
    await queue.complete(job_id, "done")
    status = await queue.get_status(job_id)
    assert status is not None and status.status is JobStatus.COMPLETED


async def test_take_after_a_failed_call_leaves_running_and_owned_entries_alone(
    timing_out_queue: RedisStreamsQueue,
) -> None:
    queue = timing_out_queue
    first, second = [await queue.enqueue(Job(payload={"n": n})) for n in range(2)]
    [running] = await queue.dequeue_many("w", 1, timeout_ms=0)
    queue._replies_lost = True  # as after a call that raised on the connection

    [started] = await queue.dequeue_many("w", 1, timeout_ms=0)

    assert (running.id, started.id) == (first, second)
    assert (running.attempts, started.attempts) == (1, 1)  # the running job was not taken back
    assert set(queue.running) == {first, second}
    assert await queue.complete(first, "done") and await queue.complete(second, "done")


async def test_outcome_and_take_whose_reply_was_lost_are_both_recovered(
    timing_out_queue: RedisStreamsQueue, redis_url: str
) -> None:
    """The finish in front of a take (one pipeline): written once, and the job the lost take
    started runs at the next take."""
    queue = timing_out_queue
    first, second = [await queue.enqueue(Job(payload={"n": n})) for n in range(2)]
    [running] = await queue.dequeue_many("w", 1, timeout_ms=0)
    row = (first, running.delivery_token or "", "completed", '"done"', 0)
    async with aioredis.from_url(redis_url) as other:
        busy = asyncio.create_task(other.eval(BUSY, 0, "1000"))
        await asyncio.sleep(0.2)  # the busy script runs
        try:
            results, taken = await queue.finish_and_take([row], "w", 1)
        except QueueConnectionError:  # the client does not retry: the worker writes it again
            await busy
            results, taken = await queue.finish_many([row]), []
        await busy
    assert taken == [] and results == [FinishResult.APPLIED]  # written once, by the lost call
    done = await queue.get_status(first)
    assert done is not None and done.status is JobStatus.COMPLETED and done.result == "done"

    [job] = await queue.dequeue_many("w", 1, timeout_ms=0)

    assert (job.id, job.attempts) == (second, 2)
