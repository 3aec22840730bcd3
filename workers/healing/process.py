"""The reference's process-wide healing worker: ``get_consensus_healing_worker()``,
``start_consensus_healing()`` and ``stop_consensus_healing()``.

The host says once which store the worker uses (``configure_consensus_healing``; the Django
app does it when it starts). ``manage.py queue_worker --queues consensus_healing`` does not
need any of this: it builds its own worker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queue_app.queue import ConfigError, RedisStreamsQueue

from .store import HealingStore
from .types import HealingConfig

if TYPE_CHECKING:
    from .worker import ConsensusHealingWorker


@dataclass
class _Process:
    store: HealingStore | None = None
    config: HealingConfig | None = None
    worker: ConsensusHealingWorker | None = None
    task: asyncio.Task[None] | None = None


_process = _Process()


def configure_consensus_healing(store: HealingStore, config: HealingConfig | None = None) -> None:
    """Set the store (and settings) of the process's healing worker."""
    _process.store, _process.config = store, config


def get_consensus_healing_worker() -> ConsensusHealingWorker:
    """Return the process's healing worker, built on first use over the configured store.

    Raises:
        ConfigError: no store was configured.
    """
    if _process.worker is None:
        if _process.store is None:
            raise ConfigError("call configure_consensus_healing(store) first")
        # Imported on first use: every Django process configures healing, few run it.
        from .worker import ConsensusHealingWorker

        queue = RedisStreamsQueue.from_config()
        _process.worker = ConsensusHealingWorker(
            config=_process.config, queue=queue, store=_process.store
        )
    return _process.worker


async def start_consensus_healing() -> ConsensusHealingWorker:
    """Run the process's healing worker in a background task; return it."""
    worker = get_consensus_healing_worker()
    if _process.task is None or _process.task.done():
        _process.task = asyncio.create_task(worker.start(), name="consensus-healing")
    return worker


async def stop_consensus_healing(timeout: float = 30.0) -> None:
    """Stop the process's healing worker (waiting ``timeout`` s for heal jobs) and forget it."""
    worker, task = _process.worker, _process.task
    _process.worker = _process.task = None
    if worker is None:
        return
    if task is not None:
        await worker.stop(timeout)
        await task
    await worker.queue.close()
