"""Gauntlet jobs: building, enqueueing and recovering a gauntlet (its id is the job's id).

The API and ``enqueue_gauntlet_job`` need only this module and the payload rules of
``probes``, not the worker that runs the probes.
"""

from __future__ import annotations

from typing import Any

from queue_app.queue import Job, JobQueue, create_redis_queue, get_queue_config

from .probes import read_input

JOB_TYPE_GAUNTLET = "gauntlet"
GAUNTLET_QUEUE = "gauntlet"
#: Deliveries idle this long count as interrupted for ``recover_interrupted_gauntlets``.
STALE_AFTER_MS = 300_000


def gauntlet_job(
    gauntlet_id: str,
    input_content: str,
    input_type: str,
    persona: str | None,
    agents: list[str] | None,
    profile: str = "default",
    user_id: str | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    max_duration_seconds: float | None = None,
) -> Job:
    """Build (without enqueueing) the gauntlet job; its id is ``gauntlet_id``.

    Raises:
        InvalidJob: the content, agents, profile or duration are not valid.
    """
    payload: dict[str, Any] = {
        "gauntlet_id": gauntlet_id,
        "input_content": input_content,
        "input_type": input_type,
        "persona": persona,
        "agents": agents,
        "profile": profile,
        "user_id": user_id,
        "workspace_id": workspace_id,
    }
    if max_duration_seconds is not None:
        payload["max_duration_seconds"] = max_duration_seconds
    read_input(gauntlet_id, payload)
    return Job(
        payload=payload,
        id=gauntlet_id,
        priority=priority,
        metadata={"job_type": JOB_TYPE_GAUNTLET},
    )


async def enqueue_gauntlet_job(
    gauntlet_id: str,
    input_content: str,
    input_type: str,
    persona: str | None,
    agents: list[str] | None,
    profile: str = "default",
    user_id: str | None = None,
    workspace_id: str | None = None,
    priority: int = 0,
    *,
    queue: JobQueue | None = None,
) -> Job:
    """Enqueue a gauntlet on the ``gauntlet`` queue (a no-op when its id is already known).

    Without ``queue`` it connects with the process-wide config for this one call.
    """
    job = gauntlet_job(
        gauntlet_id,
        input_content,
        input_type,
        persona,
        agents,
        profile,
        user_id,
        workspace_id,
        priority,
    )
    own = queue is None
    target = queue or await create_redis_queue(config=get_queue_config())
    try:
        await target.enqueue(job, priority=priority, queue_name=GAUNTLET_QUEUE)
    finally:
        if own:
            await target.close()
    return job


async def recover_interrupted_gauntlets(queue: JobQueue, idle_ms: int = STALE_AFTER_MS) -> int:
    """Take over gauntlet deliveries idle past ``idle_ms`` (their worker died); return how many.

    Only the ``gauntlet`` queue is touched. The taken deliveries start at this consumer's next
    read, so call it with the queue of a running gauntlet worker (whose maintenance loop also
    does this every ``claim_idle_ms``).
    """
    return await queue.claim_stale_jobs(idle_ms, [GAUNTLET_QUEUE])
