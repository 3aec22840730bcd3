"""``DjangoEventSink``: a worker's job events become webhook jobs, one per subscribed endpoint.

Endpoints of the job's organization or owner (its metadata) that are active and take the event
type receive it. Each webhook job's id is derived from the job, attempt, event and endpoint, so
that a repeated emit enqueues nothing new; the jobs carry the endpoint id, never its URL or
secret (``workers.webhooks``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError
from django.db.models import Q

from queue_app.models import WebhookEndpoint
from queue_app.queue import Job, JobQueue
from queue_app.stores.db_thread import in_db_thread
from workers.webhooks import WEBHOOKS_QUEUE, create_webhook_job

logger = logging.getLogger(__name__)

_EVENT_NAMESPACE = uuid.UUID("c3a9e6f1-2b7d-4e58-9f1a-8d0b4c6e2a71")


def subscribed_endpoints(event_type: str, owner: str, organization: str) -> list[int]:
    """Return the ids of active endpoints of ``organization`` or ``owner`` taking the event."""
    scope = Q(pk__in=[])
    if organization:
        scope |= Q(organization=organization)
    if owner.isdigit():
        scope |= Q(owner_id=int(owner))
    rows = WebhookEndpoint.objects.filter(scope, is_active=True).values_list("pk", "event_types")
    # Filtered here: SQLite cannot look inside JSON lists, and a scope has few endpoints.
    return [pk for pk, events in rows if event_type in (events or ())]


def webhook_jobs(job: Job, event_type: str, data: Mapping[str, Any]) -> list[Job]:
    """Return the webhook jobs of one event about ``job``."""
    owner = str(job.metadata.get("owner") or "")
    organization = str(job.metadata.get("organization") or "")
    jobs = []
    for endpoint_id in subscribed_endpoints(event_type, owner, organization):
        name = f"{job.id}/{job.attempts}/{event_type}/{endpoint_id}"
        delivery_id = str(uuid.uuid5(_EVENT_NAMESPACE, name))
        webhook_job = create_webhook_job(
            endpoint_id,
            event_type,
            data,
            delivery_id=delivery_id,
            metadata={"owner": owner, "organization": organization},
        )
        webhook_job.id = delivery_id
        jobs.append(webhook_job)
    return jobs


class DjangoEventSink:
    """The ``EventSink`` of workers: subscribed endpoints from the ORM, jobs on ``webhooks``."""

    async def emit(
        self, queue: JobQueue, job: Job, event_type: str, data: Mapping[str, Any]
    ) -> None:
        """Enqueue one webhook job per subscribed endpoint (a database outage loses the event)."""
        try:
            jobs = await in_db_thread(webhook_jobs)(job, event_type, data)
        except DatabaseError:
            logger.warning(
                "event %s of job %s not emitted: database unavailable", event_type, job.id
            )
            return
        for webhook_job in jobs:
            await queue.enqueue(webhook_job, 0, WEBHOOKS_QUEUE)
