"""Retry decisions: RetryPolicy (when) and is_retryable_error (whether)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .config import QueueConfig, get_queue_config

#: Exception types that never succeed on a second try.
NON_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    ImportError,
    SyntaxError,
)

#: Message fragments (case-insensitive) that mark an error as permanent.
NON_RETRYABLE_MESSAGES: tuple[str, ...] = (
    "invalid",
    "not found",
    "unauthorized",
    "forbidden",
    "bad request",
    "validation",
)

JITTER_FRACTION = 0.2


def is_retryable_error(error: BaseException) -> bool:
    """Tell whether a job that raised ``error`` may succeed when run again."""
    if isinstance(error, NON_RETRYABLE_EXCEPTIONS):
        return False
    message = str(error).lower()
    return not any(fragment in message for fragment in NON_RETRYABLE_MESSAGES)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with a cap and ±20 % jitter."""

    max_attempts: int = 3
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0
    exponential_base: float = 2.0
    jitter: bool = True
    #: Only errors of these types are retried (and only when ``is_retryable_error`` agrees).
    retryable_exceptions: tuple[type[BaseException], ...] = (Exception,)

    @classmethod
    def from_config(cls, config: QueueConfig | None = None) -> RetryPolicy:
        """Build a policy from the retry settings of ``config`` (the process-wide one if None)."""
        config = config or get_queue_config()
        return cls(
            max_attempts=config.retry_max_attempts,
            base_delay_seconds=config.retry_base_delay,
            max_delay_seconds=config.retry_max_delay,
        )

    def get_delay(self, attempt: int) -> float:
        """Return seconds to wait before retry number ``attempt`` (0-based)."""
        delay = min(
            self.base_delay_seconds * self.exponential_base ** max(attempt, 0),
            self.max_delay_seconds,
        )
        if self.jitter:
            delay *= 1 + random.uniform(-JITTER_FRACTION, JITTER_FRACTION)
        return min(max(delay, 0.0), self.max_delay_seconds)

    def should_retry(self, attempt: int, error: BaseException | None = None) -> bool:
        """Tell whether a job that made ``attempt`` attempts (and raised ``error``) runs again."""
        if attempt >= self.max_attempts:
            return False
        if error is None:
            return True
        return isinstance(error, self.retryable_exceptions) and is_retryable_error(error)

    def get_remaining_attempts(self, current: int) -> int:
        """Return how many attempts are left after ``current`` attempts."""
        return max(0, self.max_attempts - current)
