"""Rate limit of enqueues: ``ARAGORA_API_ENQUEUE_RATE`` per user (DRF's throttle, its cache)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class EnqueueThrottle(UserRateThrottle):
    """At most ``ARAGORA_API_ENQUEUE_RATE`` enqueues per user; 429 with Retry-After beyond."""

    scope = "enqueue"
    #: Values of ARAGORA_API_ENQUEUE_RATE that turn the limit off.
    OFF_VALUES = frozenset({"", "off", "none"})

    def get_rate(self) -> str | None:
        """Read the rate from the settings at each request (None: no limit)."""
        rate = str(settings.ARAGORA_API_ENQUEUE_RATE).strip()
        return None if rate.lower() in self.OFF_VALUES else rate
