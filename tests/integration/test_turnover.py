"""Outcomes written in the round trip of the next take (``finish_and_take``), from the queue and
from a busy worker, and what happens when Redis lost the library meanwhile."""

from __future__ import annotations

import asyncio

import redis

from queue_app.queue import FinishResult, JobStatus, RedisStreamsQueue
from tests.integration.test_worker import diag, make_worker

QUEUE = "diagnostics"


def fcalls(queue: RedisStreamsQueue) -> int:
    """Return the FCALLs the server ran since the last call (CONFIG RESETSTAT)."""
    url = queue.config.redis_url
    with redis.Redis.from_url(url) as client:
        calls = client.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0)
        client.config_resetstat()
    return int(calls)


async def test_outcomes_and_the_next_take_go_in_one_round_trip(queue: RedisStreamsQueue) -> None:
    ids = [await queue.enqueue(diag("noop", i=i), queue_name=QUEUE) for i in range(3)]
    first, second = await queue.dequeue_many("w", 2, 0, [QUEUE])
    fcalls(queue)
    rows = [
        (first.id, "", "completed", '"done"', 0),
        (second.id, "", "retry", "boom", 60_000),
        (ids[2], "0-1/1", "completed", "null", 0),  # not a delivery of ours: fenced
    ]
    turnover = await queue.finish_and_take(rows, "w", 5, [QUEUE])
    assert turnover.results == [FinishResult.WRITTEN, FinishResult.WRITTEN, FinishResult.FENCED]
    assert turnover.finish_error is None and turnover.take_error is None
    assert [job.id for job in turnover.jobs] == [ids[2]]
    assert fcalls(queue) == 2  # one finish call, one take call
    assert queue.finish_lane is not None and queue.finish_lane._connection is None  # take lane's
    statuses = [(await queue.get_status(job_id)).status for job_id in ids]  # type: ignore[union-attr]
    assert statuses == [JobStatus.COMPLETED, JobStatus.RETRYING, JobStatus.PROCESSING]
    assert (await queue.get_status(first.id)).result == "done"  # type: ignore[union-attr]


async def test_outcomes_are_written_when_redis_lost_the_library(queue: RedisStreamsQueue) -> None:
    ids = [await queue.enqueue(diag("noop", i=i), queue_name=QUEUE) for i in range(2)]
    [job] = await queue.dequeue_many("w", 1, 0, [QUEUE])
    await queue.redis.function_flush()  # a restart without persistence lost it
    turnover = await queue.finish_and_take([(job.id, "", "completed", "null", 0)], "w", 1, [QUEUE])
    assert turnover.results == [FinishResult.WRITTEN] and turnover.finish_error is None
    assert (await queue.get_status(job.id)).status == JobStatus.COMPLETED  # type: ignore[union-attr]
    taken = turnover.jobs or await queue.dequeue_many("w", 1, 0, [QUEUE])
    assert [j.id for j in taken] == [ids[1]]


async def test_a_busy_worker_writes_its_outcomes_with_its_takes(queue: RedisStreamsQueue) -> None:
    ids = [await queue.enqueue(diag("sleep", seconds=0.002), queue_name=QUEUE) for _ in range(30)]
    worker = await make_worker(queue, max_concurrent=1)
    await asyncio.wait_for(worker.start(), 30)
    for job_id in ids:
        assert (await queue.get_status(job_id)).status == JobStatus.COMPLETED  # type: ignore[union-attr]
    assert worker.counters["completed"] == 30
    # Every outcome rode with a take: the writer's own lane never wrote one.
    assert queue.finish_lane is not None and queue.finish_lane._connection is None
