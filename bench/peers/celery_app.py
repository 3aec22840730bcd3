"""Celery: the benchmark task and its producer (run with the peers' virtualenv)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from celery import Celery

from peers import shape

app = Celery("bench", broker=shape.redis_url())
# No result backend: results are not stored, as in the other systems for a None return.
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True


@app.task
def job(sent: float) -> None:
    """Do the benchmark job's work."""
    shape.record(sent)


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: ``task.delay``."""
    yield job.delay
