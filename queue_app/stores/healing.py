"""``DjangoHealingStore``: the consensus healing kind's store over the ledger and its models.

Unhealthy debates come from ``JobRecord`` (debates that completed without consensus or failed
for good); every healing is a ``HealingRecord`` row, whose ``new_debate_id`` links a debate to
the one that replaced it, so that attempts are counted per chain.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from queue_app.models import HealingRecord, JobRecord, from_timestamp
from queue_app.queue import Job
from queue_app.queue.payloads import DEBATE_JOB_TYPE
from queue_app.stores.db_thread import in_db_thread
from queue_app.stores.job_events import subscribed_endpoints
from workers.healing import FinishedDebate
from workers.healing import HealingRecord as Healing
from workers.webhooks.events import WEBHOOKS_QUEUE, create_webhook_job

#: Ledger rows read per chunk while looking for debates to heal.
SCAN_CHUNK = 100
#: Namespace of webhook job ids derived from a heal job and an endpoint.
NOTIFY_NAMESPACE = uuid.UUID("6c1f9a3e-2b7d-4e58-8f0a-d4c3b2a1e9f7")


def _stamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _chain(record: JobRecord) -> tuple[str, int]:
    """Return the root of the debate's healing chain and the healings the chain had."""
    parent = HealingRecord.objects.filter(new_debate_id=record.job_id).first()
    root = parent.root_debate_id if parent is not None else record.job_id
    return root, HealingRecord.objects.filter(root_debate_id=root).count()


def unhealthy_debates(
    completed_after: float, completed_before: float, max_attempts: int, limit: int
) -> list[FinishedDebate]:
    """Return debates of the window to heal, oldest first (see ``HealingStore``)."""
    replaced = HealingRecord.objects.exclude(new_debate_id="").values("debate_id")
    rows = (
        JobRecord.objects.filter(
            Q(status="failed") | Q(status="completed", result__consensus_reached=False),
            job_type=DEBATE_JOB_TYPE,
            archived_at__isnull=True,
            completed_at__gte=from_timestamp(completed_after),
            completed_at__lte=from_timestamp(completed_before),
        )
        .exclude(job_id__in=replaced)
        .order_by("completed_at", "pk")
    )
    found: list[FinishedDebate] = []
    for record in rows.iterator(chunk_size=SCAN_CHUNK):
        root, attempts = _chain(record)
        if attempts < max_attempts:
            found.append(_finished(record, root, attempts))
        if len(found) >= limit:
            break
    return found


def _finished(record: JobRecord, root: str, attempts: int) -> FinishedDebate:
    return FinishedDebate(
        debate_id=record.job_id,
        status=record.status,
        payload=dict(record.payload or {}),
        result=record.result if isinstance(record.result, dict) else None,
        error=record.error,
        created_at=_stamp(record.created_at) or record.recorded_at.timestamp(),
        completed_at=_stamp(record.completed_at),
        owner=record.owner,
        organization=record.organization,
        root_debate_id=root,
        attempts=attempts,
    )


def record_healing(healing: Healing) -> bool:
    """Insert the healing's row; False when its heal job was recorded already."""
    result = healing.result
    try:
        with transaction.atomic():
            HealingRecord.objects.create(
                heal_job_id=healing.heal_job_id,
                debate_id=result.debate_id,
                root_debate_id=healing.root_debate_id,
                attempt=healing.attempt,
                reason=healing.reason.value,
                action=result.action.value,
                success=result.success,
                message=result.message,
                new_debate_id=result.new_debate_id or "",
                metrics=result.metrics,
                created_at=from_timestamp(result.timestamp),
            )
    except IntegrityError:
        return False
    return True


def archive_debate(debate_id: str) -> bool:
    """Mark the debate's ledger row archived (once); False when there is no row."""
    rows = JobRecord.objects.filter(job_id=debate_id)
    rows.filter(archived_at__isnull=True).update(archived_at=timezone.now())
    return rows.exists()


def webhook_deliveries(
    event_type: str, data: dict[str, Any], owner: str, organization: str, key: str
) -> list[tuple[str, Job]]:
    """Return one webhook job per active endpoint of the owner or organization taking the event.

    Delivery ids derive from ``key`` (the heal job) and the endpoint, not from the attempt: a
    heal job run again after a crash enqueues the same deliveries, so nothing new.
    """
    metadata = {"owner": owner, "organization": organization}
    deliveries = []
    for endpoint_id in subscribed_endpoints(event_type, owner, organization):
        job_id = str(uuid.uuid5(NOTIFY_NAMESPACE, f"{key}/{endpoint_id}"))
        job = create_webhook_job(endpoint_id, event_type, data, job_id=job_id, metadata=metadata)
        deliveries.append((WEBHOOKS_QUEUE, job))
    return deliveries


class DjangoHealingStore:
    """The consensus healing kind's ``HealingStore`` over ``JobRecord`` and ``HealingRecord``."""

    async def unhealthy_debates(
        self, completed_after: float, completed_before: float, max_attempts: int, limit: int
    ) -> list[FinishedDebate]:
        """Return debates to heal from the ledger."""
        return await in_db_thread(unhealthy_debates)(
            completed_after, completed_before, max_attempts, limit
        )

    async def record(self, record: Healing) -> bool:
        """Store a healing once."""
        return await in_db_thread(record_healing)(record)

    async def archive(self, debate_id: str) -> bool:
        """Archive a debate in the ledger."""
        return await in_db_thread(archive_debate)(debate_id)

    async def notifications(
        self, event_type: str, data: dict[str, Any], *, owner: str, organization: str, key: str
    ) -> list[tuple[str, Job]]:
        """Return the webhook jobs of one event (ids derived from ``key``)."""
        return await in_db_thread(webhook_deliveries)(event_type, data, owner, organization, key)
