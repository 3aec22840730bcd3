"""The routing worker kind: ``RoutingWorker`` sends debate results back to where they came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .channels import DEBATE_COMPLETED_EVENT, HttpSender, Reply
    from .config import RoutingConfig
    from .jobs import (
        JOB_TYPE_ROUTING,
        JOB_TYPE_ROUTING_DEBATE,
        JOB_TYPE_ROUTING_EMAIL,
        ROUTING_QUEUE,
        RoutingPayload,
        create_routing_job,
        enqueue_routing_job,
        recover_interrupted_routing,
        routing_job_id,
    )
    from .messages import RouteMessage
    from .middleware import OriginRoutingMiddleware
    from .store import ROUTE_OUTCOMES, EmailMessage, RouteAttempt, RouteStore
    from .worker import RouteRejected, RouteUnavailable, RoutingWorker

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".channels": ("DEBATE_COMPLETED_EVENT", "HttpSender", "Reply"),
        ".config": ("RoutingConfig",),
        ".jobs": (
            "JOB_TYPE_ROUTING",
            "JOB_TYPE_ROUTING_DEBATE",
            "JOB_TYPE_ROUTING_EMAIL",
            "ROUTING_QUEUE",
            "RoutingPayload",
            "create_routing_job",
            "enqueue_routing_job",
            "recover_interrupted_routing",
            "routing_job_id",
        ),
        ".messages": ("RouteMessage",),
        ".middleware": ("OriginRoutingMiddleware",),
        ".store": ("ROUTE_OUTCOMES", "EmailMessage", "RouteAttempt", "RouteStore"),
        ".worker": ("RouteRejected", "RouteUnavailable", "RoutingWorker"),
    },
)

__all__ = [
    "DEBATE_COMPLETED_EVENT",
    "JOB_TYPE_ROUTING",
    "JOB_TYPE_ROUTING_DEBATE",
    "JOB_TYPE_ROUTING_EMAIL",
    "ROUTE_OUTCOMES",
    "ROUTING_QUEUE",
    "EmailMessage",
    "HttpSender",
    "OriginRoutingMiddleware",
    "Reply",
    "RouteAttempt",
    "RouteMessage",
    "RouteRejected",
    "RouteStore",
    "RouteUnavailable",
    "RoutingConfig",
    "RoutingPayload",
    "RoutingWorker",
    "create_routing_job",
    "enqueue_routing_job",
    "recover_interrupted_routing",
    "routing_job_id",
]
