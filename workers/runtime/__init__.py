"""The worker runtime: read loop, outcome writer, background loops, middleware, worker groups."""

from __future__ import annotations

from .backoff import Outage
from .group import WorkerGroup
from .kinds import Closer, KindContext, KindWorker, RuntimeArguments, WorkerKind
from .maintenance import Maintenance, Registry
from .middleware import (
    LoggingMiddleware,
    Middleware,
    MiddlewareChain,
    TracingMiddleware,
    log_extra,
)
from .outcomes import Outcome, OutcomeWriter
from .progress import report_progress
from .worker import BaseWorker, Defer, Handler, UnknownJobType, WorkerOptions

__all__ = [
    "BaseWorker",
    "Closer",
    "Defer",
    "Handler",
    "KindContext",
    "KindWorker",
    "LoggingMiddleware",
    "Maintenance",
    "Middleware",
    "MiddlewareChain",
    "Outage",
    "Outcome",
    "OutcomeWriter",
    "Registry",
    "RuntimeArguments",
    "TracingMiddleware",
    "UnknownJobType",
    "WorkerGroup",
    "WorkerKind",
    "WorkerOptions",
    "log_extra",
    "report_progress",
]
