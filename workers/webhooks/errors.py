"""Errors of webhook delivery: retrying helps (``EndpointUnavailable``) or it does not."""

from __future__ import annotations

from queue_app.queue import QueueError


class WebhookError(QueueError):
    """The webhook could not be delivered."""


class EndpointGone(WebhookError, ValueError):
    """The endpoint is missing, inactive, or does not take this event; retrying will not help."""


class TargetRefused(WebhookError, ValueError):
    """The endpoint's URL is not a public http(s) target."""


class DeliveryRejected(WebhookError, ValueError):
    """The endpoint refused the event with a status that retrying will not change."""


class EndpointUnavailable(WebhookError, ConnectionError):
    """The endpoint did not take the event now; a later attempt may succeed.

    ``retry_after`` (seconds, from the reply's ``Retry-After``) asks the worker runtime to wait
    at least that long before the next attempt, within its backoff cap.
    """

    def __init__(self, message: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpen(EndpointUnavailable):
    """The endpoint's circuit is open: the delivery waits for a later attempt."""
