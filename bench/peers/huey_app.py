"""huey: the benchmark job and its producer (run with the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from huey import RedisHuey

from peers import shape

huey = RedisHuey("bench", url=shape.redis_url())


@huey.task()
def job(sent: float) -> None:
    """Do the benchmark job's work."""
    shape.record(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: calling the task enqueues it."""
    yield job
