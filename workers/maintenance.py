"""Background loops of a worker (heartbeat, stale claim, promotion) and Redis outage backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from queue_app.queue import QueueConnectionError

from .middleware import MiddlewareChain

if TYPE_CHECKING:
    from .runtime import BaseWorker

logger = logging.getLogger(__name__)

#: Longest wait between two reconnection attempts.
MAX_BACKOFF_SECONDS = 5.0
#: How often due delayed/retrying jobs are promoted even when every slot is busy.
PROMOTE_EVERY_SECONDS = 1.0


class Outage:
    """Track a lost Redis connection: log once, back off with jitter, log the recovery once.

    Stale pooled connections fail one by one after a Redis restart; a loss within
    ``FLAP_SECONDS`` of a recovery belongs to the same outage and is not logged again.
    """

    FLAP_SECONDS = 10.0

    def __init__(self, chain: MiddlewareChain) -> None:
        self.chain = chain
        self.active = False
        self._logged = False
        self._restored_at = float("-inf")
        self._delay = 0.1

    async def wait(self, error: QueueConnectionError) -> None:
        """Record a failed call and sleep before the next try."""
        if not self.active:
            self.active = True
            self._logged = time.monotonic() - self._restored_at > self.FLAP_SECONDS
            if self._logged:
                logger.warning("Redis connection lost, reconnecting: %s", error)
        await asyncio.sleep(self._delay * random.uniform(0.5, 1.5))
        self._delay = min(self._delay * 2, MAX_BACKOFF_SECONDS)

    def recovered(self) -> None:
        """Record a successful call after an outage."""
        if not self.active:
            return
        self.active = False
        self._delay = 0.1
        self._restored_at = time.monotonic()
        if self._logged:
            logger.warning("Redis connection restored")
        self.chain.emit("on_reconnect")


def heartbeat_interval(claim_idle_ms: int) -> float:
    """Return seconds between heartbeats: well inside the takeover threshold, at most 1 s."""
    return min(1.0, claim_idle_ms / 4000)


class Maintenance:
    """Run the worker's background loops while it reads."""

    def __init__(self, worker: BaseWorker) -> None:
        self.worker = worker
        self.queue = worker.queue
        self._tasks: list[asyncio.Task[None]] = []
        self.interval = heartbeat_interval(self.queue.config.claim_idle_ms)

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

    async def stop(self) -> None:
        """Cancel the loops and remove the worker from the registry."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.worker.registry is not None:
            try:
                await self.worker.registry.unregister(self.worker.worker_id)
            except QueueConnectionError:
                logger.warning("could not unregister worker: Redis unreachable")

    async def heartbeat(self) -> None:
        """Keep running deliveries ours, cancel lost ones, refresh the registration."""
        lost = await self.queue.heartbeat()
        self.worker.cancel_lost(lost)
        if self.worker.registry is not None:
            ttl = max(10.0, self.interval * 3)
            await self.worker.registry.register(self.worker.info(), ttl)

    async def claim(self) -> None:
        """Take over deliveries of dead workers; the read loop starts them."""
        count = await self.queue.claim_stale_jobs(
            self.queue.config.claim_idle_ms, self.worker.options.queues
        )
        if count:
            logger.info("took over %d stale deliveries", count)
            self.worker.chain.emit("on_claim", count)

    async def promote(self) -> None:
        """Move due delayed and retrying jobs into their streams."""
        await self.queue.promote(self.worker.options.queues)

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
