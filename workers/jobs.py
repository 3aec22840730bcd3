"""What the ``jobs`` modules of the worker kinds share: payload keys, scoped jobs, recovery.

Each kind keeps its own job types, payload checks and rules of ownership; these helpers only
do the steps that are the same for every kind that uses them (routing, transcription).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from queue_app.queue import InvalidJob, Job, JobQueue


def check_payload_keys(payload: Mapping[str, Any], known: frozenset[str], kind: str) -> None:
    """Refuse a payload with keys outside ``known`` (``kind`` names the payload in the error).

    Raises:
        InvalidJob: naming the unknown keys, sorted.
    """
    unknown = sorted(set(payload) - known)
    if unknown:
        raise InvalidJob(f"unknown {kind} payload keys: {', '.join(unknown)}")


def scoped_job(
    payload: dict[str, Any],
    job_type: str,
    *,
    job_id: str | None,
    owner: str | None,
    organization: str | None,
    priority: int,
    max_attempts: int,
) -> Job:
    """Build a job of ``job_type`` scoped to ``owner`` (None: none) and ``organization`` (if set).

    Raises:
        InvalidJob: ``max_attempts`` is below 1.
    """
    if max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    metadata: dict[str, Any] = {"job_type": job_type}
    if owner is not None:
        metadata["owner"] = owner
    if organization:
        metadata["organization"] = organization
    return Job(
        payload=payload,
        id=job_id or str(uuid.uuid4()),
        priority=priority,
        max_attempts=max_attempts,
        metadata=metadata,
    )


async def recover_interrupted(queue: JobQueue, idle_ms: int | None, queue_name: str) -> int:
    """Take over the deliveries of ``queue_name`` idle past ``idle_ms``; return how many.

    ``idle_ms`` None means the queue's ``claim_idle_ms``, after which workers take them over
    on their own too.
    """
    threshold = queue.config.claim_idle_ms if idle_ms is None else idle_ms
    return await queue.claim_stale_jobs(threshold, [queue_name])
