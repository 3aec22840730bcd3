"""Fixtures for the queue library tests: queues on the private Redis server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from queue_app.queue import QueueConfig, RedisStreamsQueue
from tests.round_trips import RoundTrips

QueueFactory = Callable[..., Awaitable[RedisStreamsQueue]]


@pytest.fixture
def queue_config(redis_url: str) -> QueueConfig:
    """Return a config pointing at the private Redis with a short retry delay."""
    return QueueConfig(redis_url=redis_url, retry_base_delay=0.1, retry_max_delay=1.0)


@pytest.fixture
async def make_queue(queue_config: QueueConfig) -> AsyncIterator[QueueFactory]:
    """Return a factory of queues, one Redis client each, closed at the end of the test."""
    clients: list[aioredis.Redis] = []

    async def factory(
        consumer: str = "consumer-1", config: QueueConfig | None = None, decode: bool = True
    ) -> RedisStreamsQueue:
        config = config or queue_config
        client = aioredis.from_url(config.redis_url, decode_responses=decode)
        clients.append(client)
        queue = RedisStreamsQueue(client, consumer, config)
        await queue.ensure_queue(config.default_queue)
        return queue

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def queue(make_queue: QueueFactory) -> RedisStreamsQueue:
    """Return a queue with consumer ``consumer-1`` on the default ``debates`` queue."""
    return await make_queue()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    """Return a counter of the Redis round trips made from now on (every client, every thread)."""
    counter = RoundTrips()
    counter.install(monkeypatch)
    return counter
