"""Enqueues one by one on the lane (``redis/lane.py``): concurrency, lost scripts, lost servers."""

from __future__ import annotations

import asyncio
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio as aioredis

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue, create_redis_queue
from queue_app.queue.redis import SyncEnqueuer
from queue_app.queue.redis.lane import Lane
from tests.integration.conftest import QueueFactory


async def test_concurrent_enqueues_all_land_when_the_lane_is_busy(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    ids = await asyncio.gather(*(queue.enqueue(Job(payload={"i": i})) for i in range(50)))
    stats = await queue.get_queue_stats()
    assert len(set(ids)) == 50 and stats["pending"] == 50 and stats["stream_length"] == 50


async def test_enqueue_on_the_lane_loads_a_flushed_script_again(queue: RedisStreamsQueue) -> None:
    await queue.enqueue(Job(payload={"i": 0}))
    await queue.redis.script_flush()
    job_id = await queue.enqueue(Job(payload={"i": 1}))
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.payload == {"i": 1}


async def test_first_calls_after_a_restart_connect_again(redis_server_factory) -> None:
    server = redis_server_factory()
    queue = await create_redis_queue(consumer_name="c", config=QueueConfig(redis_url=server.url))
    try:
        old_id = await queue.enqueue(Job(payload={"i": 0}))
        assert (await queue.get_status(old_id)) is not None  # a pool connection, then idle
        server.restart()  # empty: no script, no group; every socket of the client is closed
        await asyncio.sleep(0.1)  # the event loop reads the end of the old sockets' streams
        assert (await queue.get_status(old_id)) is None  # on a new socket, not an error
        job_id = await queue.enqueue(Job(payload={"i": 1}))  # the lane's (or pool's) too
        assert (await queue.get_queue_stats())["pending"] == 1
        assert (await queue.get_status(job_id)) is not None
    finally:
        await queue.close()


def test_sync_enqueues_from_many_threads_all_land(queue_config: QueueConfig) -> None:
    queue = RedisStreamsQueue(aioredis.from_url(queue_config.redis_url), "c", queue_config)
    enqueuer = SyncEnqueuer.beside(queue)
    try:
        with ThreadPoolExecutor(8) as pool:
            added = list(
                pool.map(lambda i: enqueuer.enqueue_if_new(Job(payload={"i": i})), range(200))
            )
        with redis.Redis.from_url(queue_config.redis_url) as client:
            assert client.xlen(queue.stream_key) == 200
            assert client.zcard(queue.keys.index(queue_config.default_queue, "pending")) == 200
        assert added == [True] * 200
    finally:
        enqueuer.close()


def test_sync_enqueue_on_the_lane_loads_a_flushed_script_again(queue_config: QueueConfig) -> None:
    queue = RedisStreamsQueue(aioredis.from_url(queue_config.redis_url), "c", queue_config)
    enqueuer = SyncEnqueuer.beside(queue)
    try:
        job = Job(payload={"i": 0})
        assert enqueuer.enqueue_if_new(job)
        with redis.Redis.from_url(queue_config.redis_url) as client:
            client.script_flush()
            assert enqueuer.enqueue_if_new(Job(payload={"i": 1}))
            assert not enqueuer.enqueue_if_new(job)  # its id is known: not added twice
            assert client.xlen(queue.stream_key) == 2
    finally:
        enqueuer.close()


async def test_a_lane_call_to_a_server_that_stops_answering_times_out_and_recovers(
    redis_server_factory,
) -> None:
    server = redis_server_factory()
    client = aioredis.Redis.from_url(server.url, socket_timeout=0.5)
    lane = Lane(client)
    try:
        assert await lane.execute("PING") == b"PONG"
        server.process.send_signal(signal.SIGSTOP)  # the socket stays open: no reply comes
        started = time.monotonic()
        try:
            with pytest.raises(redis.TimeoutError):
                await lane.execute_many(("SET", "k", "v"), ("GET", "k"))
        finally:
            server.process.send_signal(signal.SIGCONT)
        waited = time.monotonic() - started
        # The socket timeout, per try of the client's retry policy (3 retries at most).
        assert 0.5 <= waited < 4 * 0.5 + 2.0, waited
        assert await lane.execute_many(("SET", "k", "v"), ("GET", "k")) == [True, b"v"]
        connection = lane._connection
        assert connection is not None and connection.socket_timeout == 0.5  # as the client set it
    finally:
        await lane.close()
        await client.aclose()
