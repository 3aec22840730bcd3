"""Batch explainability jobs: the queue, the job type, building and enqueueing a batch.

Kept apart from the worker so that code which only enqueues (the API, the admin) does not load
the worker and its agents.
"""

from __future__ import annotations

from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue

BATCH_QUEUE = "batch_explainability"
BATCH_JOB_TYPE = "batch_explainability"
#: Most debates one batch explains.
MAX_BATCH_ITEMS = 1000


def batch_job(
    debate_ids: list[str],
    options: dict[str, Any] | None = None,
    user_id: str | None = None,
    priority: int = 0,
) -> Job:
    """Build (without enqueueing) the job explaining ``debate_ids``.

    Raises:
        InvalidJob: ``debate_ids`` is not a list of at most 1000 ids, or ``options`` no object.
    """
    ids = debate_ids_of(debate_ids)
    if options is not None and not isinstance(options, dict):
        raise InvalidJob("options must be an object")
    return Job(
        payload={"debate_ids": ids, "options": options or {}, "user_id": user_id},
        priority=priority,
        metadata={"job_type": BATCH_JOB_TYPE, "type": BATCH_JOB_TYPE, "debate_count": len(ids)},
    )


async def create_batch_job(
    queue: JobQueue,
    debate_ids: list[str],
    options: dict[str, Any] | None = None,
    user_id: str | None = None,
    priority: int = 0,
) -> Job:
    """Enqueue the explanation of ``debate_ids`` on the ``batch_explainability`` queue."""
    job = batch_job(debate_ids, options, user_id, priority)
    await queue.enqueue(job, priority=priority, queue_name=BATCH_QUEUE)
    return job


def debate_ids_of(value: Any) -> list[str]:
    """Return the distinct debate ids of a payload's ``debate_ids`` (``InvalidJob`` if bad)."""
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise InvalidJob("debate_ids must be a list of debate ids")
    if len(value) > MAX_BATCH_ITEMS:
        raise InvalidJob(f"debate_ids holds {len(value)} ids; at most {MAX_BATCH_ITEMS}")
    return list(dict.fromkeys(value))  # one explanation per debate
