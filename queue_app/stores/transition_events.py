"""Webhook jobs for job transitions, built from the ledger writer's batches (off the hot path).

The ledger writer already reads every enqueue, retry and terminal transition from Redis in
batches. ``webhook_jobs`` turns a batch into one webhook job per transition and subscribed
endpoint, which the writer enqueues before it acknowledges the batch. Each webhook job's id
derives from the transition's ledger entry and the endpoint, so a batch read again after a
crash or restart enqueues nothing twice (the queue ignores job ids it still keeps).

Events: ``job.completed``, ``job.failed`` (the handler failed for good), ``job.dead_lettered``
(the queue gave up without a verdict: delivered too often, expired or undecodable),
``job.cancelled``, ``job.retrying``, and ``debate.completed`` (its data carries the
``DebateResult``). Endpoints of the job's organization and of its owner get them. A debate
whose payload has a ``webhook_url`` also gets its ``debate.completed`` there, signed with the
organization's (else the site's) ``SigningSecret``. Jobs of the webhook queue emit nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from queue_app.models import SigningSecret, WebhookEndpoint
from queue_app.queue import InvalidJob, Job
from queue_app.queue.payloads import DEBATE_JOB_TYPE
from queue_app.queue.redis import LedgerEvent, StoredJob
from queue_app.queue.tracing import TRACE_CONTEXT_KEY
from workers.webhooks import WEBHOOKS_QUEUE, create_webhook_job

logger = logging.getLogger(__name__)

#: Event of each ledger status that is a transition worth telling.
STATUS_EVENTS = {
    "completed": "job.completed",
    "failed": "job.failed",
    "cancelled": "job.cancelled",
    "retrying": "job.retrying",
}
#: Errors the queue itself records when it dead-letters a job (``lua/lib.lua``).
QUEUE_DEAD_LETTER_REASONS = frozenset(
    {
        "delivered more than max_attempts times",
        "job data missing or expired",
        "undecodable stream entry",
    }
)
DEBATE_COMPLETED = "debate.completed"


def event_types(event: LedgerEvent) -> list[str]:
    """Return the webhook events of one ledger event (none for pending or webhook jobs).

    Reads the job's hash fields, not its ``Job``: a ``Job`` is built only for a delivery.
    """
    stored, name = event.stored, STATUS_EVENTS.get(event.status)
    if stored is None or name is None or event.queue == WEBHOOKS_QUEUE:
        return []
    if name == "job.failed" and (stored.fields.get("error") or "") in QUEUE_DEAD_LETTER_REASONS:
        return ["job.dead_lettered"]
    job_type = str(stored.metadata.get("job_type") or DEBATE_JOB_TYPE)  # as ``Job.job_type``
    if name == "job.completed" and job_type == DEBATE_JOB_TYPE:
        return [name, DEBATE_COMPLETED]
    return [name]


def event_data(event: LedgerEvent, job: Job, name: str) -> dict[str, Any]:
    """Return the data of event ``name`` about ``job``."""
    if name == DEBATE_COMPLETED:
        return {"job_id": job.id, "result": job.result}
    data: dict[str, Any] = {
        "job_id": job.id,
        "queue": event.queue,
        "job_type": job.job_type,
        "status": event.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at,
        "completed_at": job.completed_at,
    }
    if event.status == "completed":
        data["result"] = job.result
    elif event.status in ("failed", "retrying"):
        data["error"] = job.error
    return data


def _delivery(endpoint: WebhookEndpoint, event: LedgerEvent, job: Job, name: str) -> Job | None:
    """Return the webhook job telling ``endpoint`` about ``name`` (its id fixed by the event).

    The id names the job too: one ledger entry can hold the events of several jobs.
    """
    key = f"{event.queue}|{event.entry}|{event.job_id}|{endpoint.pk}|{name}"
    job_id = "evt-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    metadata = {key: job.metadata[key] for key in ("owner", "organization") if key in job.metadata}
    if TRACE_CONTEXT_KEY in job.metadata:  # the delivery continues the job's trace
        metadata[TRACE_CONTEXT_KEY] = job.metadata[TRACE_CONTEXT_KEY]
    data = event_data(event, job, name)
    try:
        return create_webhook_job(endpoint.pk, name, data, job_id=job_id, metadata=metadata)
    except InvalidJob:  # a result too large for an event: say so instead
        data = {**data, "result": None, "result_omitted": True}
    try:
        return create_webhook_job(endpoint.pk, name, data, job_id=job_id, metadata=metadata)
    except InvalidJob as error:
        logger.warning("webhook event %s of job %s not sent: %s", name, job.id, error)
        return None


def _scope(metadata: dict[str, Any]) -> tuple[str, str]:
    return str(metadata.get("organization") or ""), str(metadata.get("owner") or "")


def _subscribed(endpoint: WebhookEndpoint, metadata: dict[str, Any], name: str) -> bool:
    organization, owner = _scope(metadata)
    mine = (organization and endpoint.organization == organization) or (
        owner and str(endpoint.owner_id) == owner
    )
    return bool(mine) and name in (endpoint.event_types or ())


def _callback(stored: StoredJob) -> WebhookEndpoint | None:
    """Return the callback endpoint of a completed debate's ``webhook_url``, if it can be signed."""
    payload = stored.decoded("payload", {})
    url = payload.get("webhook_url") if isinstance(payload, dict) else None
    if not url:
        return None
    job = stored.job
    organization, owner = _scope(stored.metadata)
    if not SigningSecret.objects.filter(organization__in={organization, ""}).exists():
        logger.warning(
            "debate %s: webhook_url not called, no signing secret for organization %r",
            job.id,
            organization,
        )
        return None
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        kind=WebhookEndpoint.Kind.CALLBACK,
        url=str(url)[:2000],
        organization=organization,
        defaults={"event_types": [DEBATE_COMPLETED], "owner_id": int(owner) if owner else None},
    )
    return endpoint if endpoint.is_active else None


def webhook_jobs(events: Sequence[LedgerEvent]) -> list[Job]:
    """Return the webhook jobs of a batch: one per transition and subscribed endpoint."""
    told = [(e, e.stored, names) for e in events if e.stored and (names := event_types(e))]
    if not told:
        return []
    scopes = [_scope(stored.metadata) for _, stored, _ in told]
    organizations, owners = {s[0] for s in scopes}, {s[1] for s in scopes}
    endpoints = list(
        WebhookEndpoint.objects.in_scope(organizations, owners).filter(
            kind=WebhookEndpoint.Kind.ENDPOINT
        )
    )
    jobs: list[Job | None] = []
    for event, stored, names in told:
        for name in names:
            targets = [e for e in endpoints if _subscribed(e, stored.metadata, name)]
            jobs += [_delivery(endpoint, event, stored.job, name) for endpoint in targets]
        callback = _callback(stored) if DEBATE_COMPLETED in names else None
        if callback is not None:
            jobs.append(_delivery(callback, event, stored.job, DEBATE_COMPLETED))
    return [job for job in jobs if job is not None]
