"""RQ: the benchmark job function and its producer (run with the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis import Redis
from rq import Queue

from peers import shape

QUEUE = "bench"


def job(sent: float) -> None:
    """Do the benchmark job's work."""
    shape.record(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``Queue.enqueue``."""
    queue = Queue(QUEUE, connection=Redis.from_url(shape.redis_url()))

    def enqueue(sent: float) -> None:
        queue.enqueue(job, sent)

    yield enqueue
