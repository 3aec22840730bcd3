"""The webhook worker kind: ``WebhookDeliveryWorker``, events, signing, endpoint store, circuit."""

from __future__ import annotations

from .circuit import BreakerState, CircuitChange, CircuitPolicy, CircuitState
from .delivery import (
    CircuitOpen,
    DeliveryOptions,
    DeliveryRejected,
    EndpointGone,
    EndpointUnavailable,
    TargetRefused,
    WebhookDeliverer,
    WebhookError,
    classify,
    is_public_address,
    resolve_target,
)
from .events import (
    DEFAULT_MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    WEBHOOK_JOB_TYPE,
    WEBHOOKS_QUEUE,
    WebhookPayload,
    create_webhook_job,
    enqueue_webhook_delivery,
    sign,
    verify_signature,
)
from .store import (
    DELIVERY_OUTCOMES,
    DeliveryAttempt,
    EndpointHealth,
    EndpointStore,
    EndpointView,
    InMemoryEndpointStore,
)
from .worker import WebhookDeliveryWorker

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DELIVERY_OUTCOMES",
    "SIGNATURE_HEADER",
    "WEBHOOKS_QUEUE",
    "WEBHOOK_JOB_TYPE",
    "BreakerState",
    "CircuitChange",
    "CircuitOpen",
    "CircuitPolicy",
    "CircuitState",
    "DeliveryAttempt",
    "DeliveryOptions",
    "DeliveryRejected",
    "EndpointGone",
    "EndpointHealth",
    "EndpointStore",
    "EndpointUnavailable",
    "EndpointView",
    "InMemoryEndpointStore",
    "TargetRefused",
    "WebhookDeliverer",
    "WebhookDeliveryWorker",
    "WebhookError",
    "WebhookPayload",
    "classify",
    "create_webhook_job",
    "enqueue_webhook_delivery",
    "is_public_address",
    "resolve_target",
    "sign",
    "verify_signature",
]
