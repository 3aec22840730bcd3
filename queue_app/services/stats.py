"""Queue statistics for the API, the admin and its dashboard: per-queue counts, workers, chart."""

from __future__ import annotations

import asyncio
from typing import Any

from django.utils import timezone

from queue_app.queue import Job, JobStatus
from queue_app.services.bridge import LibraryBridge, get_bridge

#: Minutes of history in the dashboard chart.
CHART_MINUTES = 60


def dead_letters(limit: int = 20) -> list[Job]:
    """Return the newest dead-lettered jobs of every queue (they can be retried)."""
    clients = get_bridge()
    return clients.call(clients.tracker.list_dead_letters(limit=limit))


def queue_stats() -> dict[str, dict[str, int]]:
    """Return the library's statistics of every queue, by queue name."""
    clients = get_bridge()
    return clients.call(_queue_stats(clients))


async def _queue_stats(clients: LibraryBridge) -> dict[str, dict[str, int]]:
    names = await clients.tracker.queue_names()
    stats = await asyncio.gather(*(clients.queue.get_queue_stats(name) for name in names))
    return dict(zip(names, stats, strict=True))


def list_workers() -> list[dict[str, Any]]:
    """Return the live workers with their heartbeat age."""
    clients = get_bridge()
    return clients.call(clients.registry.list_workers())


def dashboard_snapshot() -> dict[str, Any]:
    """Return what the admin dashboard shows: queues, workers, per-minute chart, ledger lag."""
    clients = get_bridge()
    return clients.call(_dashboard_snapshot(clients))


async def _dashboard_snapshot(clients: LibraryBridge) -> dict[str, Any]:
    stats = await _queue_stats(clients)
    rows = await asyncio.gather(
        *(clients.tracker.throughput(name, CHART_MINUTES) for name in stats)
    )
    queues = [
        {
            "name": name,
            "depth": max(0, s["stream_length"] - s["pending_in_group"]),
            "in_flight": s["processing"],
            "delayed": s["delayed"],
            "dead_letters": s["dead_letters"],
            "counts": {status.value: s[status.value] for status in JobStatus},
        }
        for name, s in stats.items()
    ]
    return {
        "generated_at": timezone.now().isoformat(),
        "queues": queues,
        "workers": await clients.registry.list_workers(),
        "chart": _chart(rows),
        "ledger_backlog": await clients.ledger.backlog(list(stats)),
    }


def _chart(per_queue: list[list[dict[str, int]]]) -> dict[str, list[int]]:
    """Sum per-minute rows of every queue into processed (completed) and failed series."""
    minutes = [row["minute"] for row in per_queue[0]] if per_queue else []
    processed, failed = [0] * len(minutes), [0] * len(minutes)
    for rows in per_queue:
        for i, row in enumerate(rows):
            processed[i] += row["completed"]
            failed[i] += row["failed"]
    return {"minutes": [m * 60 for m in minutes], "processed": processed, "failed": failed}
