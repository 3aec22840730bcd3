"""WorkerRegistry: live workers announce themselves with a TTL; the admin and API list them."""

from __future__ import annotations

import json
import time
from typing import Any

from ..config import QueueConfig
from .keys import Keys
from .outage import translate_errors
from .status import text


class WorkerRegistry:
    """Register, refresh, list and remove live workers."""

    def __init__(self, redis_client: Any, config: QueueConfig) -> None:
        self._redis = redis_client
        self.config = config
        self.keys = Keys(self.config.key_prefix, self.config.cluster_keys)

    @translate_errors
    async def register(self, info: dict[str, Any], ttl_seconds: float) -> None:
        """Record or refresh a worker (``info`` needs ``worker_id``); it vanishes after the TTL."""
        worker_id = str(info["worker_id"])
        now = time.time()
        fields = {key: json.dumps(value) for key, value in {**info, "last_seen": now}.items()}
        key = self.keys.worker(worker_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, max(1, int(ttl_seconds)))
            pipe.zadd(self.keys.workers(), {worker_id: now})
            await pipe.execute()

    @translate_errors
    async def unregister(self, worker_id: str) -> None:
        """Remove a worker that stops."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers(), worker_id)
            await pipe.execute()

    @translate_errors
    async def list_workers(self) -> list[dict[str, Any]]:
        """Return live workers with ``heartbeat_age_seconds``; forget those whose key expired."""
        ids = [
            text(worker_id) for worker_id in await self._redis.zrange(self.keys.workers(), 0, -1)
        ]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
            hashes = await pipe.execute()
        now, live, gone = time.time(), [], []
        for worker_id, data in zip(ids, hashes, strict=True):
            if not data:
                gone.append(worker_id)
                continue
            info = {text(k): json.loads(text(v)) for k, v in data.items()}
            info["heartbeat_age_seconds"] = round(max(0.0, now - float(info["last_seen"])), 3)
            live.append(info)
        if gone:
            await self._redis.zrem(self.keys.workers(), *gone)
        return sorted(live, key=lambda info: str(info["worker_id"]))
