"""The work of every benchmark job, the same in every system: one Redis round trip.

A job increments the counter ``COUNTER`` (the driver polls it to know how many jobs are done).
A job enqueued with ``sent`` > 0 (the producer's ``time.time()``) also appends its pickup
latency, ``time.time()`` at handler start minus ``sent``, to ``LATENCIES`` in the same
pipeline. Producers and workers run on one machine, so both times come from one clock.
"""

from __future__ import annotations

import functools
import os
import time

import redis
import redis.asyncio

COUNTER = "bench:done"
LATENCIES = "bench:latency"
#: The environment variable holding the private Redis URL of the run.
URL_VARIABLE = "BENCH_REDIS_URL"


def redis_url() -> str:
    """Return the URL of the run's private Redis."""
    return os.environ[URL_VARIABLE]


@functools.cache
def sync_client() -> redis.Redis:
    """Return this process's client (created on first use, so after a pool fork)."""
    return redis.Redis.from_url(redis_url())


@functools.cache
def async_client() -> redis.asyncio.Redis:
    """Return this process's asyncio client (one event loop per worker process)."""
    return redis.asyncio.Redis.from_url(redis_url())


def record(sent: float) -> None:
    """Do a job's bookkeeping with the blocking client."""
    started = time.time()
    if not sent:
        sync_client().incr(COUNTER)
        return
    pipe = sync_client().pipeline(transaction=False)
    pipe.incr(COUNTER).rpush(LATENCIES, started - sent)
    pipe.execute()


async def arecord(sent: float) -> None:
    """Do a job's bookkeeping with the asyncio client."""
    started = time.time()
    if not sent:
        await async_client().incr(COUNTER)
        return
    pipe = async_client().pipeline(transaction=False)
    pipe.incr(COUNTER).rpush(LATENCIES, started - sent)
    await pipe.execute()
