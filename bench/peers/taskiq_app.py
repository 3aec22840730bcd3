"""taskiq with taskiq-redis's stream broker: the task and its producer (the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from taskiq_redis import RedisStreamBroker

from peers import shape

broker = RedisStreamBroker(url=shape.redis_url())


@broker.task
async def job(sent: float) -> None:
    """Do the benchmark job's work."""
    await shape.arecord(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``task.kiq`` (startup declares the stream's consumer group)."""
    await broker.startup()
    try:
        yield job.kiq
    finally:
        await broker.shutdown()
