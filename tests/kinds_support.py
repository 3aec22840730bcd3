"""Run worker kinds as ``manage.py queue_worker`` builds them (``wiring.build_workers``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from queue_app import wiring
from queue_app.queue import Job, JobStatus, QueueConfig, RedisStreamsQueue, create_debate_job
from workers import WorkerGroup, WorkerOptions


async def build_kind(queue_name: str, config: QueueConfig, **options: Any) -> WorkerGroup:
    """Build the group ``queue_worker --queues <queue_name> --burst`` runs."""
    settings = {"worker_id": f"kind-{queue_name}", "queues": (queue_name,), "burst": True}
    return await wiring.build_workers(WorkerOptions(**{**settings, **options}), config)


async def run_kind(
    queue_name: str, config: QueueConfig, timeout: float = 40, **options: Any
) -> Any:
    """Run what ``queue_worker --queues <queue_name> --burst`` runs; return its worker."""
    group = await build_kind(queue_name, config, **options)
    try:
        await asyncio.wait_for(group.start(), timeout)
    finally:
        await group.close()
    [worker] = group.workers
    return worker


async def wait_for_job(
    queue: RedisStreamsQueue, job_id: str, ready: Callable[[Job], bool], timeout: float = 10.0
) -> Job:
    """Poll the job's status until ``ready(job)`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = await queue.get_status(job_id)
        if job is not None and ready(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} never got ready: {job}"
        await asyncio.sleep(0.05)


async def finished_debates(
    queue: RedisStreamsQueue, config: QueueConfig, questions: list[str], **options: Any
) -> list[str]:
    """Run one real debate per question (demo agents by default); return their ids."""
    ids = []
    for question in questions:
        job = create_debate_job(question, **{"agents": ["demo-a", "demo-b"], **options})
        ids.append(await queue.enqueue(job))
    await run_kind("debates", config)
    for job_id in ids:
        done = await queue.get_status(job_id)
        assert done is not None and done.status is JobStatus.COMPLETED, done
    return ids
