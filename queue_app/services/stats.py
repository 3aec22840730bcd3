"""Queue statistics for the API, the admin and its dashboard: counts, latency, workers, charts."""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from queue_app.queue import Job
from queue_app.queue.redis.observe import QueueState, read_snapshot
from queue_app.services.bridge import LibraryBridge, get_bridge

#: Minutes of history in the dashboard charts.
CHART_MINUTES = 60
#: Minutes over which the dashboard averages each queue's throughput.
THROUGHPUT_MINUTES = 5
#: Most delayed job ids read per queue to filter the admin's job list by "delayed".
DELAYED_LIMIT = 1000


def dead_letters(limit: int = 20) -> list[Job]:
    """Return the newest dead-lettered jobs of every queue (they can be retried)."""
    clients = get_bridge()
    return clients.call(clients.tracker.list_dead_letters(limit=limit))


def queue_stats() -> dict[str, dict[str, int]]:
    """Return the library's statistics of every queue, by queue name."""
    clients = get_bridge()
    return clients.call(_queue_stats(clients))


async def _queue_stats(clients: LibraryBridge) -> dict[str, dict[str, int]]:
    """Read every queue's statistics in three round trips, whatever the number of queues."""
    return await clients.queue.get_queues_stats(await clients.tracker.queue_names())


def list_workers() -> list[dict[str, Any]]:
    """Return the live workers with their heartbeat age."""
    clients = get_bridge()
    return clients.call(clients.registry.list_workers())


def due_times(jobs: list[tuple[str, str]]) -> dict[str, float]:
    """Return when each delayed or retrying job of ``(job id, queue)`` pairs runs (Unix s)."""
    if not jobs:
        return {}
    clients = get_bridge()
    return clients.call(clients.tracker.due_times(jobs))


def delayed_ids(limit: int = DELAYED_LIMIT) -> list[str]:
    """Return the ids of the delayed and retrying jobs due soonest, ``limit`` per queue."""
    clients = get_bridge()
    return clients.call(_delayed_ids(clients, limit))


async def _delayed_ids(clients: LibraryBridge, limit: int) -> list[str]:
    return await clients.tracker.delayed_ids(await clients.tracker.queue_names(), limit)


def dashboard_snapshot() -> dict[str, Any]:
    """Return what the admin dashboard shows: queues, workers, per-minute charts, ledger lag.

    Queue numbers come from the same read as the web's ``/metrics`` gauges, so they agree.
    A bounded number of Redis round trips (about eight), whatever the number of queues.
    """
    clients = get_bridge()
    return clients.call(_dashboard_snapshot(clients))


async def _dashboard_snapshot(clients: LibraryBridge) -> dict[str, Any]:
    snapshot = await read_snapshot(clients.queue.redis, clients.config)
    names = [state.queue for state in snapshot.queues]
    rows = list((await clients.tracker.throughputs(names, CHART_MINUTES)).values())
    now = time.time()
    return {
        "generated_at": timezone.now().isoformat(),
        "queues": [
            _queue_row(state, series, snapshot.workers)
            for state, series in zip(snapshot.queues, rows, strict=True)
        ],
        "workers": [_worker_row(worker, now) for worker in snapshot.workers],
        "chart": _chart(rows),
        "ledger_backlog": await clients.ledger.backlog(names),
    }


def _queue_row(
    state: QueueState, series: list[dict[str, int]], workers: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return one queue's numbers, its per-minute series and the live workers that serve it."""
    recent = series[-THROUGHPUT_MINUTES:]
    return {
        "name": state.queue,
        "depth": state.depth,
        "in_flight": state.in_flight,
        "delayed": state.delayed,
        "dead_letters": state.dead_letters,
        "counts": state.counts,
        "latency_seconds": round(state.oldest_pending_age, 3),
        "throughput_per_minute": round(
            sum(row["completed"] + row["failed"] for row in recent) / THROUGHPUT_MINUTES, 2
        ),
        "workers": sum(1 for w in workers if state.queue in (w.get("queues") or ())),
        "chart": _chart([series]),
    }


def _worker_row(worker: dict[str, Any], now: float) -> dict[str, Any]:
    """Return a worker's registration with its uptime as of now."""
    started = worker.get("started_at")
    uptime = now - float(started) if started else worker.get("uptime_seconds")
    return {**worker, "uptime_seconds": None if uptime is None else round(max(0.0, uptime), 1)}


def _chart(per_queue: list[list[dict[str, int]]]) -> dict[str, list[int]]:
    """Sum per-minute rows of every queue into processed (completed) and failed series."""
    minutes = [row["minute"] for row in per_queue[0]] if per_queue else []
    processed, failed = [0] * len(minutes), [0] * len(minutes)
    for rows in per_queue:
        for i, row in enumerate(rows):
            processed[i] += row["completed"]
            failed[i] += row["failed"]
    return {"minutes": [m * 60 for m in minutes], "processed": processed, "failed": failed}
