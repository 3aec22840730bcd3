"""What the webhook worker needs from its host (Django or not): the ``EndpointStore`` Protocol.

``EndpointStore`` is how the webhook delivery worker reads an endpoint (URL, secret, active flag,
event types), keeps the endpoint's circuit breaker, records each attempt with the endpoint's
health, and deactivates an endpoint that answered ``410 Gone``.
``queue_app.stores.endpoints.DjangoEndpointStore`` implements it over the ORM (what
``queue_worker`` runs); ``workers.webhooks.redis_store.RedisEndpointStore`` keeps endpoints in
the queue's records, for library users without Django.

The circuit breaker's rules live in ``workers.webhooks.circuit``; a store only applies a
transition atomically (``update_circuit``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from .circuit import CircuitChange, CircuitState

#: Outcomes of one delivery attempt (the ``outcome`` label of the deliveries metric).
DELIVERY_OUTCOMES = ("delivered", "retry", "failed", "circuit_open", "refused")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointView:
    """What a delivery needs to know of one endpoint (its secret stays out of reprs)."""

    id: str
    url: str
    secret: str = field(repr=False)
    is_active: bool = True
    #: Event types the endpoint takes; None: every event.
    event_types: tuple[str, ...] | None = None

    def subscribes(self, event_type: str) -> bool:
        """Tell whether the endpoint takes events of ``event_type``."""
        return self.event_types is None or event_type in self.event_types


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAttempt:
    """One attempt to deliver one event to one endpoint, as recorded."""

    endpoint_id: str
    #: Id of the webhook job.
    job_id: str
    #: The ``webhook-id`` the receiver sees (stable across retries and redeliveries).
    delivery_id: str
    event_type: str
    attempt: int
    #: One of ``DELIVERY_OUTCOMES``.
    outcome: str
    #: None when no response came back (transport error, open circuit, refused target).
    status_code: int | None = None
    duration_seconds: float | None = None
    error: str = ""
    #: The start of the response body.
    response_excerpt: str = ""
    at: float = field(default_factory=time.time)

    @property
    def reached_endpoint(self) -> bool:
        """Tell whether the attempt reached the endpoint (its circuit did not skip it)."""
        return self.outcome != "circuit_open"

    @property
    def succeeded(self) -> bool:
        """Tell whether the endpoint took the event."""
        return self.outcome == "delivered"


class EndpointStore(Protocol):
    """Webhook endpoints, their circuit breakers and delivery log, as the worker needs them."""

    async def get_endpoint(self, endpoint_id: str) -> EndpointView | None:
        """Return the endpoint's delivery view, or None when there is no such endpoint."""
        ...

    async def update_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        """Apply ``change`` to the stored circuit atomically; return it before and after."""
        ...

    async def record_delivery(self, attempt: DeliveryAttempt) -> None:
        """Record ``attempt`` and, unless its circuit skipped it, the endpoint's health."""
        ...

    async def deactivate_endpoint(self, endpoint_id: str, reason: str) -> None:
        """Stop deliveries to the endpoint (it answered ``410 Gone``)."""
        ...
