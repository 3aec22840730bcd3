"""Scrape-time queue gauges for the web's ``/metrics``, read from Redis through the library.

One scrape reads every queue in at most five Redis round trips, whatever the number of jobs
(``queue_app.queue.redis.observe.read_snapshot``). If Redis is unreachable the scrape still
answers, with ``aragora_queue_redis_up 0`` and no queue gauges, so Django's own metrics survive.

| metric                                        | labels        | meaning                         |
|-----------------------------------------------|---------------|---------------------------------|
| `aragora_queue_redis_up`                      |               | 1 if this scrape read Redis     |
| `aragora_queue_depth`                         | queue         | jobs ready, waiting for a worker|
| `aragora_queue_in_flight`                     | queue         | deliveries read, not yet acked  |
| `aragora_queue_delayed`                       | queue         | delayed or retrying, not yet due|
| `aragora_queue_dead_letter_jobs`              | queue         | jobs kept in dead letters       |
| `aragora_queue_jobs`                          | queue, status | jobs per status (exact)         |
| `aragora_queue_oldest_pending_age_seconds`    | queue         | wait of the oldest ready job    |
| `aragora_queue_live_workers`                  |               | registered, heartbeating workers|
| `aragora_queue_workers`                       | queue         | live workers reading that queue |
| `aragora_queue_scrape_duration_seconds`       |               | time this collector took        |
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from queue_app.queue import QueueConfig, QueueConnectionError, get_queue_config
from queue_app.queue.redis.observe import Snapshot, connect, read_snapshot

#: Longest a scrape waits for Redis before reporting it down.
SCRAPE_TIMEOUT_SECONDS = 5.0

_QUEUE_GAUGES = (
    ("depth", "aragora_queue_depth", "Jobs ready to run, waiting for a worker."),
    ("in_flight", "aragora_queue_in_flight", "Deliveries read by a worker, not yet acked."),
    ("delayed", "aragora_queue_delayed", "Delayed or retrying jobs waiting for their due time."),
    ("dead_letters", "aragora_queue_dead_letter_jobs", "Jobs kept in the dead-letter set."),
    (
        "oldest_pending_age",
        "aragora_queue_oldest_pending_age_seconds",
        "Seconds the oldest job ready to run has waited for a worker (0 when none waits).",
    ),
)


class QueueCollector(Collector):
    """Read queue state from Redis at each scrape."""

    def __init__(self, config: Callable[[], QueueConfig] = get_queue_config) -> None:
        self._config = config

    def describe(self) -> list[Metric]:
        """Describe nothing, so that registering does not read Redis."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the queue gauges (or ``aragora_queue_redis_up 0``)."""
        started = time.perf_counter()
        try:
            snapshot = run_coroutine(_read(self._config()))
        except (QueueConnectionError, TimeoutError):
            snapshot = None
        up = GaugeMetricFamily("aragora_queue_redis_up", "1 if this scrape could read Redis.")
        up.add_metric([], 0 if snapshot is None else 1)
        yield up
        if snapshot is not None:
            yield from snapshot_metrics(snapshot)
        took = GaugeMetricFamily(
            "aragora_queue_scrape_duration_seconds", "Time spent reading queue state."
        )
        took.add_metric([], time.perf_counter() - started)
        yield took


def snapshot_metrics(snapshot: Snapshot) -> Iterator[Metric]:
    """Turn a snapshot into metric families."""
    for attribute, name, documentation in _QUEUE_GAUGES:
        family = GaugeMetricFamily(name, documentation, labels=["queue"])
        for state in snapshot.queues:
            family.add_metric([state.queue], getattr(state, attribute))
        yield family
    jobs = GaugeMetricFamily(
        "aragora_queue_jobs", "Jobs per status (exact counts).", labels=["queue", "status"]
    )
    for state in snapshot.queues:
        for status, count in state.counts.items():
            jobs.add_metric([state.queue, status], count)
    yield jobs
    live = GaugeMetricFamily("aragora_queue_live_workers", "Workers with a live registration.")
    live.add_metric([], len(snapshot.workers))
    yield live
    by_queue = GaugeMetricFamily(
        "aragora_queue_workers", "Live workers reading each queue.", labels=["queue"]
    )
    for state in snapshot.queues:
        readers = [w for w in snapshot.workers if state.queue in (w.get("queues") or ())]
        by_queue.add_metric([state.queue], len(readers))
    yield by_queue


async def _read(config: QueueConfig) -> Snapshot:
    async with connect(config) as client:
        return await asyncio.wait_for(read_snapshot(client, config), SCRAPE_TIMEOUT_SECONDS)


def run_coroutine[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from sync code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


_lock = threading.Lock()
_registered: set[int] = set()


def register_queue_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Add the queue collector to ``registry`` (django-prometheus serves the default) once."""
    with _lock:
        if id(registry) not in _registered:
            registry.register(QueueCollector())
            _registered.add(id(registry))
