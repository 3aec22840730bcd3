"""What worker kinds need beyond the runtime: durable checkpoints of a running job, and leases.

A batch records each finished item as a checkpoint (with the job's progress, in one script), so
that a delivery taken over after a crash skips what is done. A lease lets exactly one process
of many do a periodic task (the consensus healing scan).
"""

from __future__ import annotations

import json
from typing import Any

from .core import QueueCore, dumps
from .outage import translate_errors
from .status import text

#: Take the lease when free, renew it when the caller holds it. KEYS[1] lease; ARGV holder, ms.
ACQUIRE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
#: Give the lease up when the caller holds it. KEYS[1] lease; ARGV holder.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class KindSupport(QueueCore):
    """Checkpoints and leases of ``RedisStreamsQueue``."""

    @translate_errors
    async def save_checkpoint(
        self, job_id: str, key: str, value: Any, progress: Any = None
    ) -> bool:
        """Record ``value`` under ``key`` for a job this consumer runs (and its ``progress``).

        Returns False when the delivery is no longer ours (cancelled or taken over).
        """
        delivery = self._running.get(job_id)
        if delivery is None:
            return False
        data = dumps(value, "checkpoint")
        shown = "" if progress is None else dumps(progress, "progress")
        args = [job_id, delivery.token, key, data, shown]
        queue = delivery.queue
        keys = [self.keys.job(job_id, queue), self.keys.checkpoints(job_id, queue)]
        return bool(await self._run("checkpoint", queue, args, keys))

    @translate_errors
    async def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        """Return every checkpoint of a job by key (empty when none, completed or expired)."""
        delivery = self._running.get(job_id)
        queue = delivery.queue if delivery is not None else None
        if queue is None and self.config.cluster_keys:
            job = await self.tracker.get_job(job_id)
            queue = job.queue if job is not None else None
        stored = await self._redis.hgetall(self.keys.checkpoints(job_id, queue or ""))
        return {text(key): json.loads(text(value)) for key, value in stored.items()}

    @translate_errors
    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take lease ``name`` for ``holder`` or renew it; False while someone else holds it."""
        ttl_ms = max(1, round(ttl_seconds * 1000))
        script = self._redis.register_script(ACQUIRE_LEASE)
        return bool(await script(keys=[self.keys.lease(name)], args=[holder, ttl_ms]))

    @translate_errors
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up if ``holder`` holds it; return whether it did."""
        script = self._redis.register_script(RELEASE_LEASE)
        return bool(await script(keys=[self.keys.lease(name)], args=[holder]))
