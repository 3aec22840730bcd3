"""Retry decisions: RetryPolicy (when) and is_retryable_error (whether)."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Exception types that never succeed on a second try.
NON_RETRYABLE_TYPES: tuple[type[BaseException], ...] = (
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
    if isinstance(error, NON_RETRYABLE_TYPES):
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

    def get_delay(self, attempt: int) -> float:
        """Return seconds to wait before retry number ``attempt`` (0-based)."""
        delay = min(
            self.base_delay_seconds * self.exponential_base ** max(attempt, 0),
            self.max_delay_seconds,
        )
        if self.jitter:
            delay *= 1 + random.uniform(-JITTER_FRACTION, JITTER_FRACTION)
        return min(max(delay, 0.0), self.max_delay_seconds)

    def should_retry(self, attempts: int, error: BaseException) -> bool:
        """Tell whether a job that made ``attempts`` attempts and raised ``error`` runs again."""
        return attempts < self.max_attempts and is_retryable_error(error)
