"""Run a worker kind as ``queue_worker --queues <queue> --burst`` runs it (``wiring``)."""

from __future__ import annotations

import asyncio
from typing import Any

from queue_app import wiring
from queue_app.queue import QueueConfig
from workers import WorkerOptions


async def run_kind(queue_name: str, config: QueueConfig, timeout: float = 40) -> Any:
    """Run what ``queue_worker --queues <queue_name> --burst`` runs; return its worker."""
    options = WorkerOptions(worker_id=f"kind-{queue_name}", queues=(queue_name,), burst=True)
    group = await wiring.build_workers(options, config)
    try:
        await asyncio.wait_for(group.start(), timeout)
    finally:
        await group.close()
    [worker] = group.workers
    return worker
