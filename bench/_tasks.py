"""The ``@task`` of the task-worker benchmark: one Redis round trip, nothing else.

``bench/task_worker.py`` runs ``manage.py queue_worker`` with ``bench/`` on its path, so that the
worker imports this module as ``_tasks``.
"""

from __future__ import annotations

import os
import time

from django.tasks import task
from redis.asyncio import Redis

_clients: dict[int, Redis] = {}


def _client() -> Redis:
    """Return this process's client of the benchmark's Redis (one per process)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = Redis.from_url(os.environ["REDIS_URL"])
    return _clients[pid]


@task
async def touch(key: str) -> None:
    """Append the wall time at which the task started to the list ``key``."""
    started = time.time()
    await _client().rpush(key, repr(started))
