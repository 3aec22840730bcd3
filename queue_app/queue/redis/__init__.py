"""Redis implementation of the queue: the only package that imports ``redis``."""

from __future__ import annotations

from .keys import Keys
from .ledger_feed import LedgerEvent, LedgerReader, StoredJob
from .registry import WorkerRegistry
from .status import JobStatusTracker
from .streams import RedisStreamsQueue, create_redis_queue
from .sync_enqueue import SyncEnqueuer

__all__ = [
    "JobStatusTracker",
    "Keys",
    "LedgerEvent",
    "LedgerReader",
    "RedisStreamsQueue",
    "StoredJob",
    "SyncEnqueuer",
    "WorkerRegistry",
    "create_redis_queue",
]
