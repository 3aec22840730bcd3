"""Webhook use cases of the admin, the API and application code: emit, test, redeliver.

Sync, like the other use cases of the Django layer. Each enqueues webhook jobs that carry the
endpoint id, never its URL or secret; the ``webhook_delivery`` queue's worker delivers them
(``manage.py queue_worker --queues webhook_delivery``). Job transitions are emitted by the
ledger writer (``queue_app.stores.transition_events``), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from queue_app.models import EVENT_TYPES, JobRecord, WebhookDelivery, WebhookEndpoint
from queue_app.queue import InvalidJob, Job, JobNotFound, inject_trace_context
from queue_app.services.bridge import get_bridge
from workers.webhooks import (
    DEFAULT_MAX_ATTEMPTS,
    TEST_EVENT,
    WEBHOOKS_QUEUE,
    WebhookPayload,
    create_webhook_job,
)

logger = logging.getLogger(__name__)


def _scope_of(endpoint: WebhookEndpoint) -> dict[str, str]:
    owner = "" if endpoint.owner_id is None else str(endpoint.owner_id)
    return {"owner": owner, "organization": endpoint.organization}


def _enqueue(jobs: Sequence[Job]) -> None:
    for job in jobs:
        # The queue's loop runs on another thread: carry this thread's trace context along.
        inject_trace_context(job.metadata)
    clients = get_bridge()
    clients.call(clients.queue.enqueue_many(jobs, WEBHOOKS_QUEUE))


def emit_event(
    event_type: str,
    data: Mapping[str, Any],
    *,
    organization: str = "",
    owner: str | int | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[Job]:
    """Enqueue the delivery of one event to every active endpoint subscribed to it.

    Endpoints of ``organization``, and those of ``owner`` (a user pk), receive it; with
    neither, none does. Return the enqueued jobs, one per endpoint.

    Raises:
        InvalidJob: unknown event type, or data too large (``MAX_EVENT_BYTES``).
        QueueConnectionError: Redis is unreachable.
    """
    if event_type not in EVENT_TYPES:
        raise InvalidJob(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    metadata = {"owner": "" if owner is None else str(owner), "organization": organization}
    endpoints = WebhookEndpoint.objects.in_scope([organization], ["" if owner is None else owner])
    jobs = [
        create_webhook_job(
            endpoint.pk, event_type, data, max_attempts=max_attempts, metadata=metadata
        )
        for endpoint in endpoints.filter(kind=WebhookEndpoint.Kind.ENDPOINT)
        # Filtered here: SQLite cannot look inside JSON lists, and a scope has few endpoints.
        if event_type in (endpoint.event_types or ())
    ]
    if jobs:
        _enqueue(jobs)
        logger.info(
            "event %s: %d webhook deliveries enqueued",
            event_type,
            len(jobs),
            extra={"event": "webhook.emitted", "queue": WEBHOOKS_QUEUE},
        )
    return jobs


def send_test_event(endpoint: WebhookEndpoint) -> Job:
    """Enqueue a ``webhook.test`` event to ``endpoint`` (whatever it subscribes to)."""
    data = {"webhook_id": str(endpoint.pk), "message": "A test event from the Aragora queue."}
    job = create_webhook_job(endpoint.pk, TEST_EVENT, data, metadata=_scope_of(endpoint))
    _enqueue([job])
    return job


def _original(delivery: WebhookDelivery) -> WebhookPayload:
    """Return the payload of the job that made ``delivery`` (ledger row, else Redis)."""
    record = JobRecord.objects.filter(job_id=delivery.job_id).only("payload").first()
    payload = record.payload if record is not None else None
    if not payload:
        clients = get_bridge()
        job = clients.call(clients.queue.get_status(delivery.job_id))
        payload = job.payload if job is not None else None
    if not payload:
        raise JobNotFound(f"the event of delivery {delivery.pk} is no longer kept")
    return WebhookPayload.from_job(Job(payload=payload, id=delivery.job_id))


def redeliver(delivery: WebhookDelivery) -> Job:
    """Enqueue the event of a past delivery again: a new job, the same ``webhook-id`` and body.

    Raises:
        JobNotFound: neither the ledger nor Redis keeps the event any more.
        QueueConnectionError: Redis is unreachable.
    """
    original = _original(delivery)
    job = create_webhook_job(
        delivery.endpoint_id,
        original.event_type,
        original.event_data,
        delivery_id=original.delivery_id,
        occurred_at=original.occurred_at,
        metadata=_scope_of(delivery.endpoint),
    )
    _enqueue([job])
    return job
