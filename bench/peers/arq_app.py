"""arq: the benchmark job, its worker settings and its producer (the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import RedisSettings

from peers import shape


async def job(ctx: dict[str, Any], sent: float) -> None:
    """Do the benchmark job's work."""
    await shape.arecord(sent)


class WorkerSettings:
    """What ``arq peers.arq_app.WorkerSettings`` runs; everything else is arq's default."""

    functions: ClassVar[list[Any]] = [job]
    redis_settings = RedisSettings.from_dsn(shape.redis_url())


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``ArqRedis.enqueue_job``."""
    pool = await create_pool(WorkerSettings.redis_settings)

    async def enqueue(sent: float) -> None:
        await pool.enqueue_job("job", sent)

    try:
        yield enqueue
    finally:
        await pool.aclose()
