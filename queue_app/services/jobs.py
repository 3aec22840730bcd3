"""Job use cases of the API and the admin: enqueue, status, cancel, retry, list.

Every function is sync (Django views and the admin are) and reaches Redis through
``queue_app.services.bridge``. Callers pass a ``Scope`` (``queue_app.services.scope``); a job
outside the scope is reported as missing, so that ids of other organizations cannot be probed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import F
from django.utils import timezone

from queue_app.models import JobRecord, job_record_fields
from queue_app.observability.refusals import counting_refusals
from queue_app.queue import (
    InvalidJob,
    Job,
    JobNotFound,
    JobStatus,
    QueueError,
    create_debate_job,
    scope_tags,
)
from queue_app.queue.payloads import DEBATE_JOB_TYPE
from queue_app.services.bridge import get_bridge
from queue_app.services.scope import ADMIN, Scope
from workers.batch import BATCH_JOB_TYPE, BATCH_QUEUE, batch_job
from workers.gauntlet import GAUNTLET_QUEUE, JOB_TYPE_GAUNTLET, gauntlet_job
from workers.routing import ROUTING_QUEUE, create_routing_job
from workers.routing.jobs import JOB_TYPES as ROUTING_JOB_TYPES
from workers.transcription import TRANSCRIPTION_QUEUE, create_transcription_job
from workers.transcription.jobs import JOB_TYPES as TRANSCRIPTION_JOB_TYPES

logger = logging.getLogger(__name__)

#: Largest offset of a job listing.
MAX_OFFSET = 5000
_IDEMPOTENCY_NAMESPACE = uuid.UUID("5f0c1d2e-8a4b-4c6d-9e7f-a1b2c3d4e5f6")
#: Job metadata key of the digest of the request that created a job with an Idempotency-Key.
REQUEST_DIGEST = "request_digest"


#: Debates read at once when checking a payload's debate ids (each read holds a connection).
DEBATE_READS_AT_ONCE = 16


class JobStateConflict(QueueError):
    """The job is not in a state that allows this."""


class UnknownDebate(InvalidJob):
    """A payload names a debate the caller may not see (well-formed: the API answers 422)."""


class GauntletIdTaken(InvalidJob):
    """The payload's gauntlet_id is the id of an existing job (well-formed: the API answers 422)."""


class IdempotencyConflict(QueueError):
    """This Idempotency-Key was used before for a different request."""


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing; ``count`` is None when it would need a full scan."""

    jobs: list[Job]
    count: int | None
    has_more: bool


# -- building and enqueueing jobs -------------------------------------------------------------


def _build_debate(payload: dict[str, Any], **options: Any) -> Job:
    return create_debate_job(**payload, **options)


def _transcription_builder(job_type: str) -> Callable[..., Job]:
    def build(payload: dict[str, Any], **options: Any) -> Job:
        return create_transcription_job(
            job_type,
            payload,
            priority=options["priority"],
            max_attempts=options["max_attempts"],
            user_id=options["user_id"],
            workspace_id=options["organization_id"],
        )

    return build


def _routing_builder(job_type: str) -> Callable[..., Job]:
    def build(payload: dict[str, Any], **options: Any) -> Job:
        return create_routing_job(
            job_type=job_type,
            priority=options["priority"],
            max_attempts=options["max_attempts"],
            user_id=options["user_id"],
            workspace_id=options["organization_id"],
            **payload,
        )

    return build


def _build_batch(payload: dict[str, Any], **options: Any) -> Job:
    debate_ids, batch_options = payload["debate_ids"], payload.get("options")
    job = batch_job(debate_ids, batch_options, options["user_id"], options["priority"])
    return _owned(job, options)


def _owned(job: Job, options: dict[str, Any]) -> Job:
    """Give a job built by a worker kind's helper the API's attempts and the caller's scope."""
    job.max_attempts = options["max_attempts"]
    job.metadata.update(options["metadata"])
    return job


def _build_gauntlet(payload: dict[str, Any], **options: Any) -> Job:
    gauntlet_id = payload.get("gauntlet_id")
    if gauntlet_id:  # the job id is the gauntlet id: never let one caller's id hide another's
        clients = get_bridge()
        if clients.call(clients.tracker.get_job(gauntlet_id)) is not None:
            raise GauntletIdTaken(f"gauntlet_id {gauntlet_id!r} is taken")
    job = gauntlet_job(
        gauntlet_id or str(uuid.uuid4()),
        payload["input_content"],
        payload.get("input_type", "spec"),
        payload.get("persona"),
        payload.get("agents"),
        payload.get("profile", "default"),
        user_id=options["user_id"],
        workspace_id=options["organization_id"],
        priority=options["priority"],
        max_duration_seconds=payload.get("max_duration_seconds"),
    )
    return _owned(job, options)


#: How each job type accepted by the API turns a payload into a job.
JOB_BUILDERS: dict[str, Callable[..., Job]] = {
    "debate": _build_debate,
    **{name: _transcription_builder(name) for name in TRANSCRIPTION_JOB_TYPES},
    **{name: _routing_builder(name) for name in ROUTING_JOB_TYPES},
    BATCH_JOB_TYPE: _build_batch,
    JOB_TYPE_GAUNTLET: _build_gauntlet,
}
#: The queue of each job type whose worker kind does not read the default queue.
JOB_QUEUES: dict[str, str] = {
    **dict.fromkeys(TRANSCRIPTION_JOB_TYPES, TRANSCRIPTION_QUEUE),
    **dict.fromkeys(ROUTING_JOB_TYPES, ROUTING_QUEUE),
    BATCH_JOB_TYPE: BATCH_QUEUE,
    JOB_TYPE_GAUNTLET: GAUNTLET_QUEUE,
}


def check_debates_in_scope(scope: Scope, debate_ids: list[str]) -> None:
    """Refuse debate ids the caller may not see (Redis first, then the ledger).

    Raises:
        UnknownDebate: naming the first debate that is unknown or outside the scope.
    """
    if scope.is_staff or not debate_ids:
        return
    clients = get_bridge()

    async def read_all() -> list[Job | None]:
        # In rounds: one connection per concurrent read, and the pool is bounded.
        found: list[Job | None] = []
        for start in range(0, len(debate_ids), DEBATE_READS_AT_ONCE):
            ids = debate_ids[start : start + DEBATE_READS_AT_ONCE]
            found += await asyncio.gather(*(clients.tracker.get_job(i) for i in ids))
        return found

    for debate_id, job in zip(debate_ids, clients.call(read_all()), strict=True):
        if job is None:
            record = JobRecord.objects.filter(job_id=debate_id, job_type=DEBATE_JOB_TYPE).first()
            job = record.to_job() if record is not None else None
        if job is None or job.job_type != DEBATE_JOB_TYPE or not scope.allows_job(job):
            raise UnknownDebate(f"debate_ids names no debate {debate_id!r} you may see")


def build_job(
    scope: Scope, job_type: str, payload: dict[str, Any], *, priority: int, max_attempts: int
) -> Job:
    """Build a job of ``job_type`` owned by the caller.

    Raises:
        InvalidJob: the job type is unknown or the payload is invalid for it.
    """
    builder = JOB_BUILDERS.get(job_type)
    if builder is None:
        raise InvalidJob(f"job_type: unknown job type {job_type!r}")
    if job_type == BATCH_JOB_TYPE:
        check_debates_in_scope(scope, list(payload.get("debate_ids") or []))
    metadata = {"owner": scope.user_id, "organization": scope.organization}
    try:
        return builder(
            payload,
            priority=priority,
            max_attempts=max_attempts,
            user_id=scope.user_id,
            organization_id=scope.organization or None,
            metadata=metadata,
        )
    except TypeError as error:  # a payload key the job type does not know
        raise InvalidJob(f"invalid {job_type} payload: {error}") from error


def idempotent_job_id(scope: Scope, key: str) -> str:
    """Return the job id that ``key`` stands for, for this caller."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{scope.user_id}\n{key}"))


def request_digest(job: Job, queue: str, delay_seconds: float) -> str:
    """Return a digest of what an enqueue request asks for (a repeated key must ask the same)."""
    request = [job.job_type, job.payload, job.priority, job.max_attempts, queue, delay_seconds]
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def enqueue_job(
    scope: Scope,
    job: Job,
    *,
    queue: str | None = None,
    delay_seconds: float = 0,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Enqueue ``job``; return it and True, or the first job of a repeated key and False.

    With a key, the job id is derived from the caller and the key, and the enqueue script adds
    the job only if that id is new: of concurrent requests with one key exactly one adds it.
    (With cluster keys, job hashes live per queue: the same key on two queues is not caught.)

    Raises:
        IdempotencyConflict: the key was used for another request.
        GauntletIdTaken: without a key, the job's id (its gauntlet id) is taken.
        UndeclaredQueue: ``queue`` is not declared.
        QueueFull: the queue is at its depth limit (counted on ``/metrics``).
    """
    clients = get_bridge()
    queue = queue or JOB_QUEUES.get(job.job_type)
    if not idempotency_key:
        with counting_refusals():
            added = clients.enqueuer.enqueue_if_new(job, job.priority, queue, delay_seconds)
        if not added:  # a gauntlet id taken since the payload was checked
            raise GauntletIdTaken(f"gauntlet_id {job.id!r} is taken")
        return job, True
    job.id = idempotent_job_id(scope, idempotency_key)
    digest = request_digest(job, queue or clients.config.default_queue, delay_seconds)
    job.metadata[REQUEST_DIGEST] = digest
    with counting_refusals():
        added = clients.enqueuer.enqueue_if_new(job, job.priority, queue, delay_seconds)
    if added:
        return job, True
    first = clients.call(clients.tracker.get_job(job.id))
    if first is None or first.metadata.get(REQUEST_DIGEST) != digest:
        raise IdempotencyConflict()
    return first, False


# -- single jobs ----------------------------------------------------------------------------------


def get_job(scope: Scope, job_id: str) -> Job:
    """Return the job as Redis has it now.

    Raises:
        JobNotFound: unknown, expired, or outside the caller's scope.
    """
    clients = get_bridge()
    job = clients.call(clients.tracker.get_job(job_id))
    if job is None or not scope.allows_job(job):
        raise JobNotFound(f"no job {job_id}")
    return job


def cancel_job(scope: Scope, job_id: str) -> Job:
    """Cancel a pending, retrying or running job and return it.

    Raises:
        JobNotFound: see ``get_job``.
        JobStateConflict: the job already finished.
    """
    job = get_job(scope, job_id)
    clients = get_bridge()
    if not clients.call(clients.queue.cancel(job_id)):
        raise JobStateConflict(f"job is {job.status.value}; only unfinished jobs can be cancelled")
    job = get_job(scope, job_id)
    _show_status(job)
    logger.info("job %s cancelled by %s", job_id, scope.user_id or "the admin")
    return job


def retry_job(scope: Scope, job_id: str) -> Job:
    """Run a failed or cancelled job again from attempt 0, record the retry, return the job.

    Raises:
        JobNotFound: see ``get_job``.
        JobStateConflict: the job is neither failed nor cancelled.
    """
    job = get_job(scope, job_id)
    clients = get_bridge()
    if not clients.call(clients.queue.revive(job_id)):
        raise JobStateConflict(
            f"job is {job.status.value}; only failed or cancelled jobs can be retried"
        )
    job = get_job(scope, job_id)
    _record_retry(job)
    logger.info("job %s retried by %s", job_id, scope.user_id or "the admin")
    return job


def retry_record(record: JobRecord) -> str:
    """Retry the job of a ledger row; once Redis forgot it, enqueue a copy. Return the job id.

    Raises:
        JobStateConflict: the job is neither failed nor cancelled.
    """
    try:
        return retry_job(ADMIN, record.job_id).id
    except JobNotFound:
        pass
    copy = Job(
        payload=dict(record.payload),
        priority=record.priority,
        max_attempts=max(1, record.max_attempts),
        metadata={
            "job_type": record.job_type,
            "owner": record.owner,
            "organization": record.organization,
            "retry_of": record.job_id,
        },
    )
    enqueue_job(ADMIN, copy, queue=record.queue)
    _record_retry(copy, record)
    logger.info("job %s expired from Redis, retried as new job %s", record.job_id, copy.id)
    return copy.id


def discard_dead_letters(dead: list[Job]) -> int:
    """Stop listing ``dead`` jobs as dead letters (they stay failed); return how many were."""
    clients = get_bridge()
    pairs = [(job.id, job.queue or "") for job in dead]
    count = clients.call(clients.queue.discard_dead_letters(pairs))
    logger.info("%d dead letters discarded by the admin", count)
    return count


def _record_retry(job: Job, record: JobRecord | None = None) -> None:
    """Count a retry on the ledger row (created now when the ledger has not caught up yet)."""
    if record is None:
        record, _ = JobRecord.objects.get_or_create(job_id=job.id, defaults=job_record_fields(job))
    JobRecord.objects.filter(pk=record.pk).update(
        manual_retries=F("manual_retries") + 1, last_retried_at=timezone.now()
    )
    _show_status(job)


def _show_status(job: Job) -> None:
    """Show a change made here on the job's ledger row at once, before its event is drained.

    The row keeps its ledger entry, so the writer still overwrites it with the next event.
    """
    JobRecord.objects.filter(job_id=job.id).update(status=job.status.value, attempts=job.attempts)


# -- listings and statistics ----------------------------------------------------------------------


def list_jobs(
    scope: Scope,
    status: JobStatus | None = None,
    queue: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> JobPage:
    """Return the jobs in the caller's scope from Redis, newest first.

    Staff see every job, by last transition. Other callers see the jobs of their scope indexes
    (their own, their organization's), by enqueue time; ``count`` is None when knowing it would
    take walking further than the page.
    """
    clients = get_bridge()
    if scope.is_staff:
        jobs = clients.call(clients.tracker.list_jobs(status, queue, limit + 1, offset))
        counts = clients.call(clients.tracker.get_counts_by_status(queue))
        count = counts[status.value] if status else sum(counts.values())
        return JobPage(jobs[:limit], count, len(jobs) > limit)
    tags = scope_tags({"owner": scope.user_id, "organization": scope.organization})
    page = clients.call(clients.tracker.list_scoped(tags, status, queue, limit, offset))
    return JobPage(page.jobs, page.count, page.has_more)
