"""Background loops of a worker: heartbeat and registration, stale claim, delayed promotion.

``Maintenance`` gets what it needs passed in (the queue, the queue names, the registry, the
middleware chain and two callbacks into the worker), never the worker itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from queue_app.queue import JobQueue, QueueConnectionError

from .middleware import MiddlewareChain

logger = logging.getLogger(__name__)

#: How often due delayed/retrying jobs are promoted even when every slot is busy.
PROMOTE_EVERY_SECONDS = 1.0
#: Shortest lifetime of a worker's registration.
MIN_REGISTRATION_TTL_SECONDS = 10.0


class Registry(Protocol):
    """Where live workers announce themselves (``queue_app.queue.redis.WorkerRegistry``)."""

    async def register(self, info: dict[str, Any], ttl_seconds: float) -> None:
        """Record ``info`` of a live worker for ``ttl_seconds``."""
        ...

    async def unregister(self, worker_id: str) -> None:
        """Remove a worker's record."""
        ...


def heartbeat_interval(claim_idle_ms: int) -> float:
    """Return seconds between heartbeats: well inside the takeover threshold, at most 1 s."""
    return min(1.0, claim_idle_ms / 4000)


class Maintenance:
    """Run a worker's background loops while it reads.

    Args:
        queue: the worker's queue client (its consumer owns the running deliveries).
        queue_names: the queues the worker reads.
        chain: middleware whose ``on_claim`` hooks observe takeovers.
        on_lost: called with the ids of running jobs no longer ours (cancelled, taken over).
        describe: returns the worker's registration record.
        free_slots: returns how many more jobs the worker can run now (the most it claims).
        registry: where the worker registers, or None.
    """

    def __init__(
        self,
        queue: JobQueue,
        queue_names: Sequence[str],
        chain: MiddlewareChain,
        on_lost: Callable[[list[str]], None],
        describe: Callable[[], dict[str, Any]],
        free_slots: Callable[[], int],
        registry: Registry | None = None,
    ) -> None:
        self.queue = queue
        self.queue_names = tuple(queue_names)
        self.chain = chain
        self.on_lost = on_lost
        self.describe = describe
        self.free_slots = free_slots
        self.registry = registry
        self.interval = heartbeat_interval(queue.config.claim_idle_ms)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Register the worker, then start heartbeat, takeover and promotion loops."""
        await self._heartbeat_safely()
        claim_every = self.queue.config.claim_idle_ms / 2000
        loops: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (self.interval, self.heartbeat),
            (claim_every, self.claim),
            (PROMOTE_EVERY_SECONDS, self.promote),
        ]
        for seconds, step in loops:
            self._tasks.append(asyncio.create_task(self._every(seconds, step)))

    async def stop(self, worker_id: str) -> None:
        """Cancel the loops and remove ``worker_id`` from the registry."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.registry is not None:
            try:
                await self.registry.unregister(worker_id)
            except QueueConnectionError:
                logger.warning("could not unregister worker: Redis unreachable")

    async def heartbeat(self) -> None:
        """Keep running deliveries ours, cancel lost ones, refresh the registration."""
        lost = await self.queue.heartbeat()
        if lost:
            self.on_lost(lost)
        if self.registry is not None:
            ttl = max(MIN_REGISTRATION_TTL_SECONDS, self.interval * 3)
            await self.registry.register(self.describe(), ttl)

    async def claim(self) -> None:
        """Take over deliveries of dead workers, at most the free slots; the read loop runs them."""
        free = self.free_slots()
        if free <= 0:
            return
        idle_ms = self.queue.config.claim_idle_ms
        count = await self.queue.claim_stale_jobs(idle_ms, self.queue_names, limit=free)
        if count:
            logger.info("took over %d stale deliveries", count)
            self.chain.emit("on_claim", count)

    async def promote(self) -> None:
        """Move due delayed and retrying jobs into their streams."""
        await self.queue.promote(self.queue_names)

    async def _heartbeat_safely(self) -> None:
        try:
            await self.heartbeat()
        except QueueConnectionError as error:
            logger.warning("first heartbeat failed, will retry: %s", error)

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds * random.uniform(0.9, 1.1))
            try:
                await step()
            except QueueConnectionError:
                continue
            except Exception:
                logger.exception("maintenance step %s failed", step.__name__)
