"""Circuit breaker transitions and the in-memory endpoint store (pure logic)."""

from __future__ import annotations

import pytest

from workers.webhooks.circuit import BreakerState, CircuitPolicy, CircuitState
from workers.webhooks.store import DeliveryAttempt, EndpointView, InMemoryEndpointStore

POLICY = CircuitPolicy(failure_threshold=3, open_seconds=60.0)
LEASE = 35.0


def failures(count: int, now: float = 1000.0) -> CircuitState:
    state = CircuitState()
    for _ in range(count):
        state = state.after_failure(now, POLICY)
    return state


def test_circuit_opens_after_threshold_failures_in_a_row() -> None:
    assert failures(2) == CircuitState(failure_count=2)
    opened = failures(3)
    assert opened.state is BreakerState.OPEN and opened.failure_count == 3
    assert (opened.opened_at, opened.next_attempt_at) == (1000.0, 1060.0)


def test_circuit_success_resets_the_count() -> None:
    assert failures(2).after_success() == CircuitState()


def test_open_circuit_refuses_until_next_attempt_then_admits_one_trial() -> None:
    opened = failures(3)
    assert not opened.admits(1059.9) and opened.admitting(1059.9, LEASE) == opened
    trial = opened.admitting(1060.0, LEASE)
    assert trial.state is BreakerState.HALF_OPEN and trial.next_attempt_at == 1095.0
    # While the trial holds its lease, nobody else goes; after it, another trial may.
    assert not trial.admits(1094.0)
    assert trial.admits(1095.0)


def test_half_open_trial_failure_reopens_and_success_closes() -> None:
    trial = failures(3).admitting(1060.0, LEASE)
    reopened = trial.after_failure(1061.0, POLICY)
    assert reopened.state is BreakerState.OPEN and reopened.next_attempt_at == 1121.0
    assert trial.after_success() == CircuitState()


def test_failure_reported_while_open_keeps_the_reopen_time() -> None:
    opened = failures(3)
    later = opened.after_failure(1030.0, POLICY)
    assert later.next_attempt_at == opened.next_attempt_at and later.failure_count == 4


def test_circuit_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        CircuitPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitPolicy(open_seconds=0)


async def test_in_memory_store_admits_exactly_one_trial() -> None:
    store = InMemoryEndpointStore()
    await store.update_circuit("1", lambda _: failures(3))
    granted = []
    for _ in range(3):
        before, _after = await store.update_circuit("1", lambda c: c.admitting(1060.0, LEASE))
        granted.append(before.admits(1060.0))
    assert granted == [True, False, False]
    assert (await store.get_circuit("1")).state is BreakerState.HALF_OPEN


async def test_in_memory_store_counts_health_of_attempts_that_reached_the_endpoint() -> None:
    store = InMemoryEndpointStore([EndpointView(id="1", url="https://x.test/", secret="s" * 16)])
    for outcome in ("retry", "circuit_open", "delivered", "failed"):
        attempt = DeliveryAttempt(
            endpoint_id="1",
            job_id="j",
            delivery_id="d",
            event_type="job.completed",
            attempt=1,
            outcome=outcome,
            at=5.0,
        )
        await store.record_delivery(attempt)
    health = store.health["1"]
    assert len(store.deliveries) == 4
    assert (health.success_count, health.failure_count, health.consecutive_failures) == (1, 2, 1)
    assert (health.last_success_at, health.last_failure_at) == (5.0, 5.0)


def test_endpoint_view_hides_its_secret() -> None:
    endpoint = EndpointView(id="1", url="https://x.test/", secret="whsec-very-secret")
    assert "whsec-very-secret" not in repr(endpoint)
