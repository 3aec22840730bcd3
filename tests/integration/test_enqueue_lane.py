"""Enqueues one by one on the lane (``redis/lane.py``): concurrency, lost library, lost servers.

And how the library gets loaded: with the first calls on a client, in their round trip.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio as aioredis

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue, RedisTooOld, create_redis_queue
from queue_app.queue.redis import SyncEnqueuer
from queue_app.queue.redis.lane import Lane, SyncLane
from queue_app.queue.redis.scripts import LIBRARY, SOURCE
from tests.integration.conftest import QueueFactory


async def test_concurrent_enqueues_all_land_when_the_lane_is_busy(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    ids = await asyncio.gather(*(queue.enqueue(Job(payload={"i": i})) for i in range(50)))
    stats = await queue.get_queue_stats()
    assert len(set(ids)) == 50 and stats["pending"] == 50 and stats["stream_length"] == 50


async def test_enqueue_on_the_lane_loads_a_flushed_library_again(queue: RedisStreamsQueue) -> None:
    await queue.enqueue(Job(payload={"i": 0}))
    await queue.redis.function_flush()
    job_id = await queue.enqueue(Job(payload={"i": 1}))
    stored = await queue.get_status(job_id)
    assert stored is not None and stored.payload == {"i": 1}


def script_calls(url: str) -> tuple[int, int, int]:
    """Return the FCALL calls, FUNCTION LOAD calls and refused FCALLs since CONFIG RESETSTAT.

    The refusals are a lost library's ("Function not found") in these tests."""
    with redis.Redis.from_url(url) as client:
        commands = client.info("commandstats")
        client.config_resetstat()
    fcall, load = (commands.get(f"cmdstat_{name}", {}) for name in ("fcall", "function|load"))
    return fcall.get("calls", 0), load.get("calls", 0), fcall.get("failed_calls", 0)


@pytest.fixture
async def fresh(redis_server_factory) -> AsyncIterator[tuple[RedisStreamsQueue, str]]:
    """Yield a queue on a server of its own (no library loaded) and the server's URL.

    Made without ``create_redis_queue``, which loads the library: as a process that builds its
    queue from a client finds it.
    """
    server = redis_server_factory()
    config = QueueConfig(redis_url=server.url)
    queue = RedisStreamsQueue(aioredis.from_url(server.url), "c", config)
    await queue.ensure_queue(config.default_queue)
    script_calls(server.url)
    yield queue, server.url
    await queue.close()
    await queue.redis.aclose()  # the queue closes only a client it made


async def test_create_redis_queue_loads_the_library_so_first_calls_do_not(
    redis_server_factory,
) -> None:
    server = redis_server_factory()
    queue = await create_redis_queue(consumer_name="c", config=QueueConfig(redis_url=server.url))
    try:
        assert script_calls(server.url)[1] == 1  # FUNCTION LOAD at creation
        await queue.enqueue_many([Job(payload={"i": i}) for i in range(1200)])
        assert script_calls(server.url) == (3, 0, 0)
        again = await create_redis_queue(consumer_name="d", config=queue.config)
        await again.close()  # a second process: its load is refused (known), nothing replaced
        with redis.Redis.from_url(server.url) as client:
            assert len(client.function_list()) == 1
    finally:
        await queue.close()


async def test_a_new_version_deletes_the_libraries_of_older_ones_which_load_theirs_again(
    redis_server_factory,
) -> None:
    server = redis_server_factory()
    older = SOURCE.replace(LIBRARY, "aragora_0000000000000000")  # another version's code
    with redis.Redis.from_url(server.url) as client:
        client.function_load(older)
    queue = await create_redis_queue(consumer_name="c", config=QueueConfig(redis_url=server.url))
    try:
        with redis.Redis.from_url(server.url) as client:
            names = [dict(zip(e[::2], e[1::2], strict=True)) for e in client.function_list()]
            assert [entry[b"library_name"].decode() for entry in names] == [LIBRARY]
            client.function_load(older)  # an older process's next call loads its own again
        await queue.enqueue(Job(payload={}))  # this version's library stays
        assert (await queue.get_queue_stats())["pending"] == 1
    finally:
        await queue.close()


async def test_a_redis_without_functions_is_refused_with_a_clear_error(
    redis_server_factory,
) -> None:
    server = redis_server_factory(extra=["--rename-command", "FUNCTION", ""])  # as Redis 6.2
    with pytest.raises(RedisTooOld, match=r"Redis 7\.0 or newer is needed.*unknown command"):
        await create_redis_queue(config=QueueConfig(redis_url=server.url))


async def test_a_first_batch_loads_the_library_with_its_calls_and_sends_them_once(
    fresh: tuple[RedisStreamsQueue, str],
) -> None:
    queue, url = fresh
    await queue.enqueue_many([Job(payload={"i": i}) for i in range(1200)])  # 3 calls
    assert script_calls(url) == (3, 1, 0)
    await queue.enqueue(Job(payload={}))  # on the lane: no load again
    assert script_calls(url) == (1, 0, 0)
    await queue.redis.function_flush()  # the server lost it: refused, loaded, sent again
    script_calls(url)
    await queue.enqueue_many([Job(payload={"i": i}) for i in range(1200)])
    assert script_calls(url) == (6, 1, 3)
    assert (await queue.get_queue_stats())["pending"] == 2401


async def test_a_first_single_enqueue_loads_the_library_in_its_round_trip(
    fresh: tuple[RedisStreamsQueue, str],
) -> None:
    queue, url = fresh
    job_id = await queue.enqueue(Job(payload={"i": 0}))
    assert script_calls(url) == (1, 1, 0)
    assert (await queue.get_status(job_id)) is not None


def test_a_first_sync_batch_loads_the_library_with_its_calls(redis_server_factory) -> None:
    server = redis_server_factory()
    config = QueueConfig(redis_url=server.url)
    queue = RedisStreamsQueue(aioredis.from_url(server.url), "c", config)
    enqueuer = SyncEnqueuer.beside(queue)
    try:
        script_calls(server.url)
        enqueuer.enqueue_many([Job(payload={"i": i}) for i in range(1200)])
        assert script_calls(server.url) == (3, 1, 0)
        with redis.Redis.from_url(server.url) as client:
            assert client.xlen(queue.stream_key) == 1200
    finally:
        enqueuer.close()


async def test_first_calls_after_a_restart_connect_again(redis_server_factory) -> None:
    server = redis_server_factory()
    queue = await create_redis_queue(consumer_name="c", config=QueueConfig(redis_url=server.url))
    try:
        old_id = await queue.enqueue(Job(payload={"i": 0}))
        assert (await queue.get_status(old_id)) is not None  # a pool connection, then idle
        server.restart()  # empty: no library, no group; every socket of the client is closed
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


def test_sync_enqueue_on_the_lane_loads_a_flushed_library_again(queue_config: QueueConfig) -> None:
    queue = RedisStreamsQueue(aioredis.from_url(queue_config.redis_url), "c", queue_config)
    enqueuer = SyncEnqueuer.beside(queue)
    try:
        job = Job(payload={"i": 0})
        assert enqueuer.enqueue_if_new(job)
        with redis.Redis.from_url(queue_config.redis_url) as client:
            client.function_flush()
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


def test_sync_lane_runs_many_commands_in_one_trip_with_errors_in_place(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    lane = SyncLane(client)
    commands = (("SET", "k", "v"), ("INCR", "k"), ("GET", "k"))
    try:
        replies = lane.execute_many(*commands)
        assert replies[0] is True and replies[2] == b"v"  # parsed as the client parses them
        assert isinstance(replies[1], redis.ResponseError)
        with lane._lock:  # busy (another thread): through the client's pipeline, same replies
            busy = lane.execute_many(*commands)
        assert busy[0] is True and busy[2] == b"v" and isinstance(busy[1], redis.ResponseError)
    finally:
        lane.close()
        client.close()
