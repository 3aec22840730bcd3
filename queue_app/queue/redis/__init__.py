"""Redis implementation of the queue: the only package that imports ``redis``."""

from __future__ import annotations

from .status import JobStatusTracker
from .streams import RedisStreamsQueue, create_redis_queue

__all__ = ["JobStatusTracker", "RedisStreamsQueue", "create_redis_queue"]
