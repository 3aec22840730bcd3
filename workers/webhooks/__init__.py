"""The webhook worker kind: ``WebhookDeliveryWorker``, events, signing, endpoint stores, circuit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .cipher import SecretCipher, SecretUnreadable
    from .circuit import BreakerState, CircuitChange, CircuitPolicy, CircuitState
    from .delivery import DeliveryOptions, WebhookDeliverer, classify, retry_after_seconds
    from .errors import (
        CircuitOpen,
        DeliveryRejected,
        EndpointGone,
        EndpointUnavailable,
        TargetRefused,
        WebhookError,
    )
    from .events import (
        DEFAULT_MAX_ATTEMPTS,
        MAX_EVENT_BYTES,
        TEST_EVENT,
        WEBHOOK_JOB_TYPE,
        WEBHOOKS_QUEUE,
        WebhookPayload,
        create_webhook_job,
        enqueue_webhook_delivery,
    )
    from .health import DeliveryResult, EndpointHealth
    from .redis_store import REGISTRY, RedisEndpointStore
    from .signing import (
        REFERENCE_SIGNATURE_HEADER,
        SECRET_PREFIX,
        check_secret,
        generate_secret,
        reference_signature,
        standard_headers,
    )
    from .store import DELIVERY_OUTCOMES, DeliveryAttempt, EndpointStore, EndpointView
    from .targets import check_target, is_public_address, resolve_target
    from .worker import WebhookDeliveryWorker

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".cipher": ("SecretCipher", "SecretUnreadable"),
        ".circuit": ("BreakerState", "CircuitChange", "CircuitPolicy", "CircuitState"),
        ".delivery": ("DeliveryOptions", "WebhookDeliverer", "classify", "retry_after_seconds"),
        ".errors": (
            "CircuitOpen",
            "DeliveryRejected",
            "EndpointGone",
            "EndpointUnavailable",
            "TargetRefused",
            "WebhookError",
        ),
        ".events": (
            "DEFAULT_MAX_ATTEMPTS",
            "MAX_EVENT_BYTES",
            "TEST_EVENT",
            "WEBHOOK_JOB_TYPE",
            "WEBHOOKS_QUEUE",
            "WebhookPayload",
            "create_webhook_job",
            "enqueue_webhook_delivery",
        ),
        ".health": ("DeliveryResult", "EndpointHealth"),
        ".redis_store": ("REGISTRY", "RedisEndpointStore"),
        ".signing": (
            "REFERENCE_SIGNATURE_HEADER",
            "SECRET_PREFIX",
            "check_secret",
            "generate_secret",
            "reference_signature",
            "standard_headers",
        ),
        ".store": ("DELIVERY_OUTCOMES", "DeliveryAttempt", "EndpointStore", "EndpointView"),
        ".targets": ("check_target", "is_public_address", "resolve_target"),
        ".worker": ("WebhookDeliveryWorker",),
    },
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DELIVERY_OUTCOMES",
    "MAX_EVENT_BYTES",
    "REFERENCE_SIGNATURE_HEADER",
    "REGISTRY",
    "SECRET_PREFIX",
    "TEST_EVENT",
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
    "DeliveryResult",
    "EndpointGone",
    "EndpointHealth",
    "EndpointStore",
    "EndpointUnavailable",
    "EndpointView",
    "RedisEndpointStore",
    "SecretCipher",
    "SecretUnreadable",
    "TargetRefused",
    "WebhookDeliverer",
    "WebhookDeliveryWorker",
    "WebhookError",
    "WebhookPayload",
    "check_secret",
    "check_target",
    "classify",
    "create_webhook_job",
    "enqueue_webhook_delivery",
    "generate_secret",
    "is_public_address",
    "reference_signature",
    "resolve_target",
    "retry_after_seconds",
    "standard_headers",
]
