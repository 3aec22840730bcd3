"""What the webhook worker needs from its host (Django or not): the ``EndpointStore`` Protocol.

``EndpointStore`` is how the webhook delivery worker reads an endpoint (URL, secret, active flag,
event types), keeps the endpoint's circuit breaker, and records each attempt with the endpoint's
health. ``queue_app.stores.endpoints.DjangoEndpointStore`` implements it over the ORM;
``InMemoryEndpointStore`` serves library users without Django and tests of pure logic.

The circuit breaker's rules live in ``workers.webhooks.circuit``; a store only applies a
transition atomically (``update_circuit``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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
    event_types: tuple[str, ...] = ()

    def subscribes(self, event_type: str) -> bool:
        """Tell whether the endpoint takes events of ``event_type``."""
        return event_type in self.event_types


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAttempt:
    """One attempt to deliver one event to one endpoint, as recorded."""

    endpoint_id: str
    #: Id of the webhook job, and the delivery id the receiver sees (stable across retries).
    job_id: str
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

    async def get_circuit(self, endpoint_id: str) -> CircuitState:
        """Return the endpoint's circuit as stored (closed when none is)."""
        ...

    async def update_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        """Apply ``change`` to the stored circuit atomically; return it before and after."""
        ...

    async def record_delivery(self, attempt: DeliveryAttempt) -> None:
        """Record ``attempt`` and, unless its circuit skipped it, the endpoint's health."""
        ...


@dataclass(slots=True)
class EndpointHealth:
    """Delivery health of one endpoint (the columns of ``WebhookEndpoint``)."""

    consecutive_failures: int = 0
    success_count: int = 0
    failure_count: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None

    def record(self, attempt: DeliveryAttempt) -> None:
        """Count ``attempt`` (which reached the endpoint)."""
        if attempt.succeeded:
            self.success_count += 1
            self.consecutive_failures = 0
            self.last_success_at = attempt.at
        else:
            self.failure_count += 1
            self.consecutive_failures += 1
            self.last_failure_at = attempt.at


class InMemoryEndpointStore:
    """An ``EndpointStore`` in this process's memory, for library users and tests.

    Each method runs without awaiting, so on one event loop every change is atomic.
    """

    def __init__(self, endpoints: Iterable[EndpointView] = ()) -> None:
        self.endpoints: dict[str, EndpointView] = {}
        self.circuits: dict[str, CircuitState] = {}
        self.health: dict[str, EndpointHealth] = {}
        self.deliveries: list[DeliveryAttempt] = []
        for endpoint in endpoints:
            self.add(endpoint)

    def add(self, endpoint: EndpointView) -> None:
        """Add or replace an endpoint (its circuit and health are kept)."""
        self.endpoints[endpoint.id] = endpoint
        self.health.setdefault(endpoint.id, EndpointHealth())

    async def get_endpoint(self, endpoint_id: str) -> EndpointView | None:
        """Return the endpoint, or None."""
        return self.endpoints.get(endpoint_id)

    async def get_circuit(self, endpoint_id: str) -> CircuitState:
        """Return the endpoint's circuit (closed when never changed)."""
        return self.circuits.get(endpoint_id, CircuitState())

    async def update_circuit(
        self, endpoint_id: str, change: CircuitChange
    ) -> tuple[CircuitState, CircuitState]:
        """Apply ``change`` to the endpoint's circuit; return it before and after."""
        before = self.circuits.get(endpoint_id, CircuitState())
        after = change(before)
        self.circuits[endpoint_id] = after
        return before, after

    async def record_delivery(self, attempt: DeliveryAttempt) -> None:
        """Append ``attempt`` to the log and count it in the endpoint's health."""
        self.deliveries.append(attempt)
        if attempt.reached_endpoint:
            self.health.setdefault(attempt.endpoint_id, EndpointHealth()).record(attempt)
