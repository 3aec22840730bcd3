"""``report_progress()``: a handler records the progress of the job it runs."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from queue_app.queue import JobQueue, QueueConnectionError

logger = logging.getLogger(__name__)

#: The queue and id of the job the current task runs.
_current: contextvars.ContextVar[tuple[JobQueue, str]] = contextvars.ContextVar(
    "aragora_current_job"
)


def bind_job(queue: JobQueue, job_id: str) -> None:
    """Make ``job_id`` on ``queue`` the job of the current task (the worker calls this)."""
    _current.set((queue, job_id))


async def report_progress(progress: Any) -> bool:
    """Record JSON ``progress`` of the job the calling handler runs (False outside a job)."""
    current = _current.get(None)
    if current is None:
        return False
    queue, job_id = current
    try:
        return await queue.set_progress(job_id, progress)
    except QueueConnectionError:
        logger.warning("progress not recorded: Redis unreachable", extra={"job_id": job_id})
        return False
