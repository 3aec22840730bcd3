"""Why a job is not running: its run time, its queue's workers, its worker's heartbeat.

Read live from Redis (the job, the delayed set, the worker registry, the queue's counters) for
the admin's job page; finished and running jobs with a live worker need no explanation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from queue_app.queue import Job, JobStatus
from queue_app.services.bridge import LibraryBridge, get_bridge


def why_not_running(job_id: str) -> list[str]:
    """Return the reasons the job waits, in plain sentences; empty when it runs or finished."""
    clients = get_bridge()
    return clients.call(_reasons(clients, job_id))


async def _reasons(clients: LibraryBridge, job_id: str) -> list[str]:
    job = await clients.tracker.get_job(job_id)
    if job is None or job.status.is_terminal or not job.queue:
        return []
    workers = await clients.registry.list_workers()
    if job.status is JobStatus.PROCESSING:
        return _worker_gone(job, workers, clients.config.claim_idle_ms)
    reasons = []
    due = (await clients.tracker.due_times([(job.id, job.queue)])).get(job.id)
    if due is not None:
        reasons.append(_due(job, due))
    serving = [w for w in workers if job.queue in (w.get("queues") or ())]
    if not serving:
        reasons.append(
            f"No live worker serves queue “{job.queue}”: start one with "
            f"`manage.py queue_worker --queues {job.queue}`."
        )
    elif due is None:
        reasons.append(await _backlog(clients, job, serving))
    return reasons


def _due(job: Job, due: float) -> str:
    when = datetime.fromtimestamp(due, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    wait = max(0.0, due - time.time())
    if job.status is JobStatus.RETRYING:
        return f"It waits to retry at {when} (in {wait:.0f} s) after: {job.error or 'an error'}."
    return f"It waits for its run time: {when} (in {wait:.0f} s)."


def _worker_gone(job: Job, workers: list[dict[str, Any]], claim_idle_ms: int) -> list[str]:
    """Explain a running job whose worker no longer heartbeats (nothing when it does)."""
    if any(w.get("worker_id") == job.worker_id for w in workers):
        return []
    return [
        f"Its worker {job.worker_id or '?'} stopped heart-beating: another worker takes the job "
        f"over once it has been idle for {claim_idle_ms / 1000:.0f} s."
    ]


async def _backlog(clients: LibraryBridge, job: Job, serving: list[dict[str, Any]]) -> str:
    """Describe the queue a ready job waits in: jobs ready, and the slots of its workers."""
    stats = await clients.queue.get_queue_stats(job.queue)
    ready = max(0, stats["stream_length"] - stats["pending_in_group"])
    slots = sum(int(w.get("max_concurrent") or 0) for w in serving)
    busy = sum(int(w.get("active_jobs") or 0) for w in serving)
    return (
        f"It is one of {ready} job(s) ready in queue “{job.queue}”, served by "
        f"{len(serving)} live worker(s) using {busy} of {slots} slot(s)."
    )
