"""Redis outage handling of a worker: log once, back off with jitter, log the recovery once."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from queue_app.queue import QueueConnectionError, QueueError

from .middleware import MiddlewareChain

logger = logging.getLogger(__name__)

#: Longest wait between two reconnection attempts.
MAX_BACKOFF_SECONDS = 5.0
#: First wait after a failed call.
FIRST_BACKOFF_SECONDS = 0.1


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
        self._delay = FIRST_BACKOFF_SECONDS

    async def wait(self, error: QueueError) -> None:
        """Record a failed call and sleep before the next try."""
        if not self.active:
            self.active = True
            self._logged = time.monotonic() - self._restored_at > self.FLAP_SECONDS
            if self._logged and isinstance(error, QueueConnectionError):
                logger.warning("Redis connection lost, reconnecting: %s", error)
            elif self._logged:
                logger.error("Redis refused a call, retrying: %s", error)
        await asyncio.sleep(self._delay * random.uniform(0.5, 1.5))
        self._delay = min(self._delay * 2, MAX_BACKOFF_SECONDS)

    def recovered(self) -> None:
        """Record a successful call after an outage."""
        if not self.active:
            return
        self.active = False
        self._delay = FIRST_BACKOFF_SECONDS
        self._restored_at = time.monotonic()
        if self._logged:
            logger.warning("Redis connection restored")
        self.chain.emit("on_reconnect")
