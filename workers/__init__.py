"""Worker runtime and worker kinds; imports the queue library, never Django."""

from __future__ import annotations

from .debate import DebateExecutor, DebateWorker
from .middleware import LoggingMiddleware, Middleware, MiddlewareChain, TracingMiddleware
from .runtime import BaseWorker, Handler, UnknownJobType, WorkerOptions

__all__ = [
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
]
