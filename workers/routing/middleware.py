"""``OriginRoutingMiddleware``: when a debate with a recorded origin finishes, route its result.

Part of the production middleware chain (``queue_app.wiring``), innermost: once the debate's
handler returned, a routing job carrying the result is enqueued on the ``routing`` queue under
an id derived from the debate's, so that a rerun of the debate never routes twice. If Redis
refuses the routing job, the debate's attempt fails and is retried: a result is never dropped.
"""

from __future__ import annotations

from typing import Any

from queue_app.queue import Job, JobQueue
from queue_app.queue.origin import ORIGIN_KEY
from queue_app.queue.payloads import DEBATE_JOB_TYPE

from ..runtime import Middleware
from ..runtime.middleware import CallNext
from .jobs import ROUTING_QUEUE, enqueue_routing_job, routing_job_id


class OriginRoutingMiddleware(Middleware):
    """Enqueue the routing of each finished debate that has an origin."""

    def __init__(self, queue: JobQueue, queue_name: str = ROUTING_QUEUE) -> None:
        self.queue = queue
        self.queue_name = queue_name

    async def wrap_job(self, job: Job, call_next: CallNext) -> Any:
        """Run the job; then, for a debate with an origin, enqueue its routing job."""
        result = await call_next(job)
        if job.job_type == DEBATE_JOB_TYPE and ORIGIN_KEY in job.metadata:
            await enqueue_routing_job(
                self.queue,
                routing_job_id(job.id),
                job.id,
                result if isinstance(result, dict) else None,
                user_id=job.metadata.get("owner"),
                workspace_id=job.metadata.get("organization") or None,
                queue_name=self.queue_name,
            )
        return result
