"""Worker runtime and worker kinds; imports the queue library, never Django."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .debate import DebateWorker, debate_handlers
from .diagnostics import DIAGNOSTICS_QUEUE, diagnostics_handlers
from .executor import DebateExecutor, create_default_executor, load_executor
from .middleware import LoggingMiddleware, Middleware, MiddlewareChain, TracingMiddleware
from .runtime import BaseWorker, Handler, UnknownJobType, WorkerOptions

#: Worker kinds by queue name: each builds the handlers (by job type) of its queue.
WORKER_KINDS: dict[str, Callable[..., Awaitable[dict[str, Handler]]]] = {
    "debates": debate_handlers,
    DIAGNOSTICS_QUEUE: diagnostics_handlers,
}

__all__ = [
    "WORKER_KINDS",
    "BaseWorker",
    "DebateExecutor",
    "DebateWorker",
    "Handler",
    "LoggingMiddleware",
    "Middleware",
    "MiddlewareChain",
    "TracingMiddleware",
    "UnknownJobType",
    "WorkerOptions",
    "create_default_executor",
    "load_executor",
]
