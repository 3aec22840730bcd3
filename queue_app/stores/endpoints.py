"""ORM implementations of the workers' sinks: ``DjangoEndpointStore`` over the webhook models.

Each call runs in asgiref's database thread as one unit of work (stale connections dropped
before and after, as for a request). Secrets are decrypted only here, for the delivery at hand;
a callback endpoint (a debate's ``webhook_url``) is signed with its organization's secret.
Circuit changes lock the circuit row, so that the pure transitions of
``workers.webhooks.CircuitState`` apply one at a time across worker processes (PostgreSQL:
``SELECT ... FOR UPDATE``; SQLite serialises writers anyway). Health counters change with
``F()`` expressions, never read-modify-write.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from queue_app.models import CircuitBreakerState, WebhookDelivery, WebhookEndpoint, from_timestamp
from queue_app.stores.db_thread import in_db_thread
from workers.webhooks import (
    BreakerState,
    CircuitChange,
    CircuitState,
    DeliveryAttempt,
    EndpointGone,
    EndpointView,
)


def endpoint_view(endpoint_id: str) -> EndpointView | None:
    """Return the delivery view of endpoint ``endpoint_id``, or None when there is none."""
    try:
        pk = int(endpoint_id)
    except ValueError:
        return None
    endpoint = WebhookEndpoint.objects.filter(pk=pk).first()
    if endpoint is None:
        return None
    secret = endpoint.signing_secret()
    if secret is None:
        raise EndpointGone(f"webhook endpoint {pk}: its organization has no signing secret")
    return EndpointView(
        id=str(pk),
        url=endpoint.url,
        secret=secret,
        is_active=endpoint.is_active,
        event_types=tuple(str(event) for event in endpoint.event_types or ()),
    )


def _state(row: CircuitBreakerState) -> CircuitState:
    return CircuitState(
        state=BreakerState(row.state),
        failure_count=row.failure_count,
        opened_at=row.opened_at.timestamp() if row.opened_at else None,
        next_attempt_at=row.next_attempt_at.timestamp() if row.next_attempt_at else None,
    )


def change_circuit(endpoint_id: str, change: CircuitChange) -> tuple[CircuitState, CircuitState]:
    """Apply ``change`` to the locked circuit row of the endpoint; return it before and after."""
    pk = int(endpoint_id)
    with transaction.atomic():
        row = CircuitBreakerState.objects.select_for_update().filter(endpoint_id=pk).first()
        if row is None:  # endpoints saved without save() (bulk_create) have no circuit yet
            row, _ = CircuitBreakerState.objects.get_or_create(endpoint_id=pk)
        before = _state(row)
        after = change(before)
        if after != before:
            CircuitBreakerState.objects.filter(pk=row.pk).update(
                state=after.state.value,
                failure_count=after.failure_count,
                opened_at=from_timestamp(after.opened_at),
                next_attempt_at=from_timestamp(after.next_attempt_at),
                updated_at=timezone.now(),
            )
    return before, after


def record_delivery(attempt: DeliveryAttempt) -> None:
    """Insert the delivery row and, when the attempt reached the endpoint, count its health."""
    pk = int(attempt.endpoint_id)
    at = from_timestamp(attempt.at)
    health: dict[str, Any]
    if attempt.succeeded:
        health = {
            "success_count": F("success_count") + 1,
            "consecutive_failures": 0,
            "last_success_at": at,
        }
    else:
        health = {
            "failure_count": F("failure_count") + 1,
            "consecutive_failures": F("consecutive_failures") + 1,
            "last_failure_at": at,
        }
    with transaction.atomic():
        WebhookDelivery.objects.create(
            endpoint_id=pk,
            event=attempt.event_type,
            job_id=attempt.job_id,
            delivery_id=attempt.delivery_id,
            attempt=attempt.attempt,
            status_code=attempt.status_code,
            duration_seconds=attempt.duration_seconds,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
            delivered_at=at,
        )
        if attempt.reached_endpoint:
            WebhookEndpoint.objects.filter(pk=pk).update(**health)


def deactivate(endpoint_id: str, reason: str) -> None:
    """Stop deliveries to the endpoint, saying why."""
    WebhookEndpoint.objects.filter(pk=int(endpoint_id)).update(
        is_active=False, deactivated_reason=reason[:200], updated_at=timezone.now()
    )


class DjangoEndpointStore:
    """The ``EndpointStore`` of workers over the webhook endpoint, circuit and delivery models."""

    async def get_endpoint(self, endpoint_id: str) -> EndpointView | None:
        """Return the endpoint's URL, secret, active flag and event types, or None."""
        return await in_db_thread(endpoint_view)(endpoint_id)

    async def update_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        """Apply ``change`` to the endpoint's circuit under a row lock; return before and after."""
        return await in_db_thread(change_circuit)(endpoint_id, change)

    async def record_delivery(self, attempt: DeliveryAttempt) -> None:
        """Record the attempt and the endpoint's health."""
        await in_db_thread(record_delivery)(attempt)

    async def deactivate_endpoint(self, endpoint_id: str, reason: str) -> None:
        """Mark the endpoint inactive with ``reason``."""
        await in_db_thread(deactivate)(endpoint_id, reason)
