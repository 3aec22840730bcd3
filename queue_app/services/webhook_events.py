"""Emit job events to webhook endpoints: one webhook job per active, subscribed endpoint.

Sync, like the other use cases of the Django layer (call it from views, the admin, signal
receivers or ``sync_to_async``). The jobs carry the endpoint id, never its URL or secret; the
``webhooks`` queue's worker delivers them (``manage.py queue_worker --queues webhooks``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db.models import Q

from queue_app.models import EVENT_TYPES, WebhookEndpoint
from queue_app.queue import InvalidJob, Job, inject_trace_context
from queue_app.services.bridge import get_bridge
from workers.webhooks.events import DEFAULT_MAX_ATTEMPTS, WEBHOOKS_QUEUE, create_webhook_job

logger = logging.getLogger(__name__)


def subscribers(
    event_type: str, *, organization: str = "", owner: str | int | None = None
) -> list[WebhookEndpoint]:
    """Return the active endpoints of ``organization`` or ``owner`` that take ``event_type``."""
    matches = []
    if organization:
        matches.append(Q(organization=organization))
    if owner not in (None, ""):
        matches.append(Q(owner_id=owner))
    if not matches:
        return []
    scope = matches[0] if len(matches) == 1 else matches[0] | matches[1]
    endpoints = WebhookEndpoint.objects.filter(scope, is_active=True).order_by("pk")
    # Filtered here: SQLite cannot look inside JSON lists, and an owner has few endpoints.
    return [endpoint for endpoint in endpoints if event_type in (endpoint.event_types or ())]


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
    jobs = [
        create_webhook_job(
            endpoint.pk, event_type, data, max_attempts=max_attempts, metadata=metadata
        )
        for endpoint in subscribers(event_type, organization=organization, owner=owner)
    ]
    if not jobs:
        return []
    for job in jobs:
        # The queue's loop runs on another thread: carry this thread's trace context along.
        inject_trace_context(job.metadata)
    clients = get_bridge()
    clients.call(clients.queue.enqueue_many(jobs, WEBHOOKS_QUEUE))
    logger.info(
        "event %s: %d webhook deliveries enqueued",
        event_type,
        len(jobs),
        extra={"event": "webhook.emitted", "queue": WEBHOOKS_QUEUE},
    )
    return jobs
