"""The reference's delivery records: ``DeliveryResult`` per attempt, ``EndpointHealth`` per URL.

A ``WebhookDeliveryWorker`` keeps one ``EndpointHealth`` per URL it delivered to since it
started (``get_endpoint_health(url)``, ``get_all_endpoint_health()``), as the reference's worker
does; the lasting health of an endpoint, shared by every worker, is in its ``EndpointStore``
(the admin and ``GET /api/queue/webhooks/`` show it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class DeliveryResult:
    """The outcome of one attempt to deliver one event (a delivered job's result)."""

    webhook_id: str
    url: str
    success: bool
    status_code: int | None = None
    error: str | None = None
    response_time_ms: float = 0.0
    #: 1 for the first attempt, then 2, 3, ...
    attempt: int = 1
    #: Unix time the attempt ended.
    delivered_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON data."""
        return asdict(self)


@dataclass(slots=True)
class EndpointHealth:
    """Deliveries to one URL seen by this worker, and the URL's circuit state."""

    url: str
    total_deliveries: int = 0
    successful_deliveries: int = 0
    failed_deliveries: int = 0
    #: Unix times of the last success and failure.
    last_success_at: float | None = None
    last_failure_at: float | None = None
    avg_response_time_ms: float = 0.0
    #: "closed", "open" or "half-open", as after the last attempt.
    circuit_state: str = "closed"

    @property
    def success_rate(self) -> float:
        """Return the percentage of successful deliveries (100.0 before the first one)."""
        if not self.total_deliveries:
            return 100.0
        return self.successful_deliveries / self.total_deliveries * 100.0

    def record(self, result: DeliveryResult, circuit_state: str) -> None:
        """Count ``result`` and remember the circuit state it left."""
        self.total_deliveries += 1
        if result.success:
            self.successful_deliveries += 1
            self.last_success_at = result.delivered_at
        else:
            self.failed_deliveries += 1
            self.last_failure_at = result.delivered_at
        mean = self.avg_response_time_ms
        self.avg_response_time_ms = mean + (result.response_time_ms - mean) / self.total_deliveries
        self.circuit_state = circuit_state.replace("_", "-")


class HealthBook:
    """``EndpointHealth`` by URL, filled as attempts end."""

    def __init__(self) -> None:
        self.by_url: dict[str, EndpointHealth] = {}

    def record(self, result: DeliveryResult, circuit_state: str) -> None:
        """Count ``result`` for its URL."""
        health = self.by_url.setdefault(result.url, EndpointHealth(url=result.url))
        health.record(result, circuit_state)

    def totals(self) -> dict[str, int]:
        """Return deliveries, successes and failures over every URL."""
        book = self.by_url.values()
        return {
            "deliveries_total": sum(h.total_deliveries for h in book),
            "deliveries_succeeded": sum(h.successful_deliveries for h in book),
            "deliveries_failed": sum(h.failed_deliveries for h in book),
        }
