"""Worker runtime and worker kinds; imports the queue library, never Django."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .debate import DebateWorker, debate_kind
from .diagnostics import DIAGNOSTICS_QUEUE, diagnostics_kind
from .executor import DebateExecutor, create_default_executor, load_executor
from .middleware import LoggingMiddleware, Middleware, MiddlewareChain, TracingMiddleware
from .runtime import (
    BaseWorker,
    Defer,
    Handler,
    KindOptions,
    UnknownJobType,
    WorkerKind,
    WorkerOptions,
)
from .webhook_delivery import webhook_kind

#: Worker kinds by queue name: each builds the handlers (by job type) of its queue.
WORKER_KINDS: dict[str, Callable[[KindOptions], Awaitable[WorkerKind]]] = {
    "debates": debate_kind,
    DIAGNOSTICS_QUEUE: diagnostics_kind,
    "webhooks": webhook_kind,
}

__all__ = [
    "WORKER_KINDS",
    "BaseWorker",
    "DebateExecutor",
    "DebateWorker",
    "Defer",
    "Handler",
    "KindOptions",
    "LoggingMiddleware",
    "Middleware",
    "MiddlewareChain",
    "TracingMiddleware",
    "UnknownJobType",
    "WorkerKind",
    "WorkerOptions",
    "create_default_executor",
    "load_executor",
]
