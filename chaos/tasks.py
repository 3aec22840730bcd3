"""The chaos job: a ``django.tasks`` task that counts its runs in Redis.

Each run adds one to ``RUNS_KEY[job id]`` before anything else, so the run counts every
execution, including those whose worker died before the outcome was written. A job's fate is
chosen at enqueue: ``ok`` sleeps ``millis`` and returns the id of the worker that ran it,
``fail_once`` fails the first time any worker runs it (a retryable error), ``fail_always``
raises ``ValueError`` (never retried).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.tasks import TaskContext, task
from redis.asyncio import Redis

from chaos.plan import CHAOS_QUEUE, FAILED_ONCE_KEY, PERMANENT_FAILURE, RUNS_KEY

_clients: dict[str, Redis] = {}


class ChaosFailure(RuntimeError):
    """The one designed failure of a ``fail_once`` job (retried by the queue)."""


def runs_client() -> Redis:
    """Return this process's client of the run counters (made on first use, in the loop)."""
    url = str(settings.REDIS_URL)
    if url not in _clients:
        _clients[url] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return _clients[url]


@task(queue_name=CHAOS_QUEUE, takes_context=True)
async def chaos_job(context: TaskContext, millis: int, fate: str) -> dict[str, Any]:
    """Count this run, fail as ``fate`` says, else sleep ``millis`` and name this worker."""
    job_id = context.task_result.id
    client = runs_client()
    await client.hincrby(RUNS_KEY, job_id, 1)
    if fate == "fail_once" and await client.hsetnx(FAILED_ONCE_KEY, job_id, 1):
        raise ChaosFailure("chaos: failing once on purpose")
    if fate == "fail_always":
        raise ValueError(PERMANENT_FAILURE)
    await asyncio.sleep(millis / 1000)
    return {"worker": context.task_result.worker_ids[-1]}
