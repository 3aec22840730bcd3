"""Circuit breaker transitions, endpoint views and the reference's health records (pure logic)."""

from __future__ import annotations

import pytest

from workers.webhooks import DeliveryResult, EndpointHealth
from workers.webhooks.circuit import BreakerState, CircuitPolicy, CircuitState
from workers.webhooks.store import EndpointView

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


def test_endpoint_view_hides_its_secret() -> None:
    endpoint = EndpointView(id="1", url="https://x.test/", secret="whsec-very-secret")
    assert "whsec-very-secret" not in repr(endpoint)


def test_endpoint_view_without_event_types_takes_every_event() -> None:
    anything = EndpointView(id="wh-1", url="https://x.test/", secret="s")
    chosen = EndpointView(id="2", url="https://x.test/", secret="s", event_types=("job.failed",))
    assert anything.subscribes("debate.completed")
    assert chosen.subscribes("job.failed") and not chosen.subscribes("job.completed")


def test_endpoint_health_counts_a_running_mean_and_the_circuit_it_left() -> None:
    health = EndpointHealth(url="https://x.test/")
    assert health.success_rate == 100.0  # no deliveries yet, as in the reference
    for ms, ok, state in (
        (100.0, True, "closed"),
        (300.0, False, "open"),
        (200.0, True, "half_open"),
    ):
        result = DeliveryResult(
            "wh-1", "https://x.test/", ok, response_time_ms=ms, delivered_at=7.0
        )
        health.record(result, state)
    assert (health.total_deliveries, health.successful_deliveries, health.failed_deliveries) == (
        3,
        2,
        1,
    )
    assert health.avg_response_time_ms == pytest.approx(200.0)
    assert health.success_rate == pytest.approx(200 / 3)
    assert (health.last_success_at, health.last_failure_at) == (7.0, 7.0)
    assert health.circuit_state == "half-open"  # the reference's spelling


def test_delivery_result_has_the_reference_fields_in_order() -> None:
    result = DeliveryResult("wh-1", "https://x.test/", False, 503, "HTTP 503", 12.5, 2, 9.0)
    assert result.to_dict() == {
        "webhook_id": "wh-1",
        "url": "https://x.test/",
        "success": False,
        "status_code": 503,
        "error": "HTTP 503",
        "response_time_ms": 12.5,
        "attempt": 2,
        "delivered_at": 9.0,
    }
