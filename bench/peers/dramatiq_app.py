"""Dramatiq: the benchmark actor and its producer (run with the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers import shape

dramatiq.set_broker(RedisBroker(url=shape.redis_url()))


@dramatiq.actor
def job(sent: float) -> None:
    """Do the benchmark job's work."""
    shape.record(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``actor.send``."""
    yield job.send
