"""WorkerGroup: the workers of one process (one per worker kind), started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .worker import BaseWorker, install_signal_handlers


class WorkerGroup:
    """Run several workers on one event loop; a stop (or a signal) stops them all."""

    def __init__(self, workers: Sequence[BaseWorker]) -> None:
        if not workers:
            raise ValueError("a worker group needs at least one worker")
        self.workers = list(workers)

    @property
    def is_running(self) -> bool:
        """Tell whether every worker runs."""
        return all(worker.is_running for worker in self.workers)

    @property
    def problems(self) -> list[str]:
        """Return why the group is not ready (a worker stopped, outcomes not being written)."""
        found = []
        for worker in self.workers:
            if not worker.is_running:
                found.append(f"{worker.worker_id}: not running")
            elif worker.outcomes.failing:
                found.append(f"{worker.worker_id}: outcomes not written")
        return found

    def get_stats(self) -> list[dict[str, Any]]:
        """Return the statistics of each worker."""
        return [worker.get_stats() for worker in self.workers]

    async def start(self) -> None:
        """Run every worker until all have stopped; if one fails, stop the others."""
        tasks = [asyncio.create_task(worker.start()) for worker in self.workers]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if any(task.exception() for task in done if not task.cancelled()):
            self.request_stop()
        await asyncio.gather(*tasks)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker, each waiting ``timeout`` s for its in-flight jobs."""
        await asyncio.gather(*(worker.stop(timeout) for worker in self.workers))

    def request_stop(self) -> None:
        """Ask every worker to stop (signal-handler safe)."""
        for worker in self.workers:
            worker.request_stop()

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: graceful stop of every worker. Second: exit at once."""
        install_signal_handlers(self.request_stop)

    async def ping(self) -> None:
        """Check that the queue store answers (raises ``QueueConnectionError``)."""
        await self.workers[0].queue.ping()

    async def close(self) -> None:
        """Release each worker's queue client."""
        for worker in self.workers:
            await worker.queue.close()
