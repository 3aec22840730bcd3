"""The circuit breaker of a webhook endpoint: pure transitions of the frozen ``CircuitState``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerState(StrEnum):
    """States of an endpoint's circuit breaker (values as stored and as metric names)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitPolicy:
    """When a circuit opens and how long it stays open."""

    #: Consecutive failures that open a closed circuit.
    failure_threshold: int = 5
    #: Seconds an open circuit refuses deliveries before it lets one trial through.
    open_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.open_seconds <= 0:
            raise ValueError("open_seconds must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitState:
    """The circuit breaker of one endpoint; transitions return a new state."""

    state: BreakerState = BreakerState.CLOSED
    #: Failures in a row (reset by a success).
    failure_count: int = 0
    #: Unix time the circuit last opened.
    opened_at: float | None = None
    #: Open: when a trial may go. Half open: when the running trial's lease ends.
    next_attempt_at: float | None = None

    def admits(self, now: float) -> bool:
        """Tell whether a delivery may go now (closed, or a trial is due)."""
        if self.state is BreakerState.CLOSED:
            return True
        return self.next_attempt_at is None or now >= self.next_attempt_at

    def admitting(self, now: float, lease_seconds: float) -> CircuitState:
        """Return the state once a delivery asked to go: a due trial takes a lease."""
        if self.state is BreakerState.CLOSED or not self.admits(now):
            return self
        # The lease lets exactly one trial run; if its worker dies, the next one goes after it.
        return replace(self, state=BreakerState.HALF_OPEN, next_attempt_at=now + lease_seconds)

    def after_success(self) -> CircuitState:
        """Return the state after the endpoint answered: closed, no failures."""
        return CircuitState()

    def after_failure(self, now: float, policy: CircuitPolicy) -> CircuitState:
        """Return the state after the endpoint was unavailable: open past the threshold."""
        count = self.failure_count + 1
        if self.state is BreakerState.OPEN:
            return replace(self, failure_count=count)
        if self.state is BreakerState.HALF_OPEN or count >= policy.failure_threshold:
            return CircuitState(
                state=BreakerState.OPEN,
                failure_count=count,
                opened_at=now,
                next_attempt_at=now + policy.open_seconds,
            )
        return replace(self, failure_count=count)


#: A pure change of a circuit, applied atomically by ``EndpointStore.update_circuit``.
CircuitChange = Callable[[CircuitState], CircuitState]
