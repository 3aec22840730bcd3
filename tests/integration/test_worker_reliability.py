"""Outcomes under faults: Redis refusals, stale attempts, lost replies, claims within free slots."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from queue_app.queue import (
    FinishResult,
    Job,
    JobStatus,
    QueueConfig,
    RedisStreamsQueue,
    create_redis_queue,
)
from workers import BaseWorker, MiddlewareChain, WorkerGroup, WorkerOptions
from workers.diagnostics import HANDLERS
from workers.runtime import Maintenance

QueueFactory = Callable[..., Awaitable[RedisStreamsQueue]]


def diag(job_type: str, **payload: Any) -> Job:
    return Job(payload=payload, metadata={"job_type": job_type})


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_outcomes_survive_a_redis_that_refuses_scripts(
    redis_server_factory: Callable[..., Any],
) -> None:
    """Refused script calls (not a lost connection) hold the outcomes, turn readiness red,
    and lose nothing once Redis takes them again."""
    server = redis_server_factory()
    config = QueueConfig(redis_url=server.url, retry_base_delay=0.1)
    producer = await create_redis_queue(consumer_name="producer", config=config)
    queue = await create_redis_queue(consumer_name="w-oom", config=config)
    admin = aioredis.from_url(server.url, decode_responses=True)
    options = WorkerOptions(worker_id="w-oom", queues=("diagnostics",), max_concurrent=4)
    worker = BaseWorker(queue, HANDLERS, options, middleware=MiddlewareChain())
    group = WorkerGroup([worker])
    try:
        ids = [await producer.enqueue(diag("sleep", seconds=0.5), queue_name="diagnostics")]
        ids += [await producer.enqueue(diag("noop"), queue_name="diagnostics") for _ in range(7)]
        runner = asyncio.create_task(worker.start())
        await wait_until(lambda: _started(worker))
        # NOPERM for every function call: an error reply on a live connection, as OOM would be.
        await admin.execute_command("ACL", "SETUSER", "default", "-fcall")
        await wait_until(lambda: _true(worker.outcomes.failing))
        assert group.problems == ["w-oom: outcomes not written"]
        await asyncio.sleep(0.5)
        assert worker.outcomes.pending  # held, not dropped
        await admin.execute_command("ACL", "SETUSER", "default", "+@all")
        await wait_until(lambda: _all_completed(producer, ids))
        assert not worker.outcomes.failing and group.problems == []
        await asyncio.wait_for(worker.stop(timeout=2), 10)
        await runner
        for stream in await admin.keys("aragora:queue:diagnostics:stream*"):
            assert (await admin.xpending(stream, "debate-workers"))["pending"] == 0
    finally:
        await admin.execute_command("ACL", "SETUSER", "default", "+@all")
        await admin.aclose()
        await producer.close()
        await queue.close()


async def _started(worker: BaseWorker) -> bool:
    return worker.active_jobs > 0


async def _true(value: bool) -> bool:
    return value


async def _all_completed(queue: RedisStreamsQueue, ids: list[str]) -> bool:
    jobs = [await queue.get_status(job_id) for job_id in ids]
    return all(job is not None and job.status is JobStatus.COMPLETED for job in jobs)


async def test_stale_attempt_of_the_same_process_is_fenced(queue: RedisStreamsQueue) -> None:
    """The process holds a newer delivery of the job: the old attempt's outcome is refused."""
    job_id = await queue.enqueue(Job(payload={}))
    [old] = await queue.dequeue_many("w", 1, 100)
    assert await queue.claim_stale_jobs(idle_ms=0) == 1  # its own claim loop, after a stall
    [new] = await queue.dequeue_many("w", 1, 100)
    assert (old.id, new.id) == (job_id, job_id) and old.delivery_token != new.delivery_token
    stale = (job_id, old.delivery_token or "", "completed", '"old"', 0)
    assert await queue.finish_many([stale]) == [FinishResult.FENCED]
    fresh = (job_id, new.delivery_token or "", "completed", '"new"', 0)
    assert await queue.finish_many([fresh]) == [FinishResult.WRITTEN]
    done = await queue.get_status(job_id)
    assert done is not None and (done.status, done.result) == (JobStatus.COMPLETED, "new")


class ReplyDropper:
    """A TCP proxy to Redis that, when armed, drops the next reply and closes the connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.armed = False
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        upstream = asyncio.create_task(self._pipe(client_r, server_w, drop=False))
        try:
            await self._pipe(server_r, client_w, drop=True)
        finally:
            upstream.cancel()
            for writer in (client_w, server_w):
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drop: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if drop and self.armed:
                    self.armed = False
                    return  # the command ran; its reply never arrives
                writer.write(data)
                await writer.drain()


@pytest.fixture
async def dropper(redis_server: Any) -> AsyncIterator[ReplyDropper]:
    proxy = ReplyDropper(redis_server.port)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_outcome_whose_reply_was_lost_is_applied_once(
    redis_url: str, dropper: ReplyDropper
) -> None:
    """A retried write after a lost reply is reported as already applied, not as fenced."""
    config = QueueConfig(redis_url=f"redis://127.0.0.1:{dropper.port}/0")
    queue = await create_redis_queue(consumer_name="w", config=config)
    try:
        first_id = await queue.enqueue(Job(payload={}))
        job_id = await queue.enqueue(Job(payload={}))
        first, job = await queue.dequeue_many("w", 2, 100)
        assert [first.id, job.id] == [first_id, job_id]
        # The connection that writes outcomes is up: the reply dropped is the outcome's.
        warm = (first_id, first.delivery_token or "", "completed", '"done"', 0)
        assert await queue.finish_many([warm]) == [FinishResult.WRITTEN]
        row = (job_id, job.delivery_token or "", "completed", '"done"', 0)
        dropper.armed = True
        with pytest.raises(ConnectionError):
            await queue.finish_many([row])
        assert await queue.heartbeat() == []  # finished under its token: not "lost"
        assert await queue.finish_many([row]) == [FinishResult.APPLIED]
        done = await queue.get_status(job_id)
        assert done is not None and (done.status, done.result) == (JobStatus.COMPLETED, "done")
    finally:
        await queue.close()


async def test_claims_take_at_most_the_free_slots(make_queue: QueueFactory) -> None:
    stream, group = "aragora:queue:debates:stream", "debate-workers"
    dead = await make_queue("dead")
    for _ in range(5):
        await dead.enqueue(Job(payload={}))
    assert len(await dead.dequeue_many("dead", 5, 100)) == 5
    entries = [
        p["message_id"] for p in await dead.redis.xpending_range(stream, group, "-", "+", 10)
    ]
    idle = dead.config.claim_idle_ms * 2  # the dead worker went quiet long ago
    await dead.redis.xclaim(stream, group, "dead", 0, entries, idle=idle, justid=True)
    live = await make_queue("live")
    maintenance = Maintenance(
        live,
        ["debates"],
        MiddlewareChain(),
        on_lost=lambda ids: None,
        describe=dict,
        free_slots=lambda: 2,
    )
    await maintenance.claim()
    owners = [p["consumer"] for p in await live.redis.xpending_range(stream, group, "-", "+", 10)]
    assert sorted(owners) == ["dead", "dead", "dead", "live", "live"]
