"""RetryPolicy maths and error classification."""

from __future__ import annotations

import pytest

from queue_app.queue import (
    QueueConfig,
    RetryPolicy,
    is_retryable_error,
    reset_queue_config,
    set_queue_config,
)
from queue_app.queue.retry import NON_RETRYABLE_EXCEPTIONS


def test_delay_grows_exponentially_without_jitter() -> None:
    policy = RetryPolicy(base_delay_seconds=1.0, jitter=False)
    assert [policy.get_delay(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]


def test_delay_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(base_delay_seconds=10.0, max_delay_seconds=30.0, jitter=False)
    assert policy.get_delay(5) == 30.0


def test_jitter_stays_within_twenty_percent() -> None:
    policy = RetryPolicy(base_delay_seconds=1.0, exponential_base=2.0)
    delays = [policy.get_delay(2) for _ in range(500)]
    assert all(3.2 <= delay <= 4.8 for delay in delays)
    assert max(delays) - min(delays) > 0.5


def test_should_retry_respects_attempts_and_error_kind() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(1, ConnectionError("reset"))
    assert not policy.should_retry(3, ConnectionError("reset"))
    assert not policy.should_retry(1, ValueError("bad"))


@pytest.mark.parametrize(
    "error",
    [ConnectionError("x"), TimeoutError("x"), RuntimeError("x"), Exception("rate limited")],
)
def test_transient_errors_are_retryable(error: Exception) -> None:
    assert is_retryable_error(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("x"),
        TypeError("x"),
        KeyError("x"),
        AttributeError("x"),
        ImportError("x"),
        SyntaxError("x"),
        RuntimeError("Invalid API key"),
        ConnectionError("endpoint Not Found"),
        Exception("401 Unauthorized"),
        Exception("403 forbidden"),
        Exception("400 Bad Request"),
        Exception("schema validation failed"),
    ],
)
def test_permanent_errors_are_not_retryable(error: Exception) -> None:
    assert not is_retryable_error(error)


def test_should_retry_without_an_error_counts_attempts_only() -> None:
    policy = RetryPolicy(max_attempts=2)
    assert policy.should_retry(1) and not policy.should_retry(2)
    assert policy.get_remaining_attempts(0) == 2
    assert policy.get_remaining_attempts(5) == 0


def test_should_retry_only_listed_exception_types() -> None:
    policy = RetryPolicy(retryable_exceptions=(ConnectionError,))
    assert policy.should_retry(1, ConnectionError("reset"))
    assert not policy.should_retry(1, RuntimeError("boom"))


def test_policy_from_config_copies_the_retry_settings() -> None:
    config = QueueConfig(retry_max_attempts=5, retry_base_delay=0.5, retry_max_delay=9.0)
    policy = RetryPolicy.from_config(config)
    assert policy.max_attempts == 5
    assert (policy.base_delay_seconds, policy.max_delay_seconds) == (0.5, 9.0)
    set_queue_config(config)
    try:
        assert RetryPolicy.from_config().max_attempts == 5
    finally:
        reset_queue_config()


def test_non_retryable_exceptions_are_the_references() -> None:
    expected = (ValueError, TypeError, KeyError, AttributeError, ImportError, SyntaxError)
    assert expected == NON_RETRYABLE_EXCEPTIONS
