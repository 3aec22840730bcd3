"""Middleware around every job: an onion of ``wrap_job``, and hooks called as things happen.

A layer that only observes (counts, logs) uses the synchronous hooks ``on_start`` and ``on_end``
instead of ``wrap_job``: the chain calls only the hooks a layer defines, and wraps the handler
only in layers that define ``wrap_job``, so that each job pays for what its layers do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from queue_app.queue import Job
from queue_app.queue.tracing import consumer_span, job_trace_id, tracing_enabled

if TYPE_CHECKING:
    from .worker import BaseWorker

logger = logging.getLogger(__name__)

CallNext = Callable[[Job], Awaitable[Any]]

#: Outcomes passed to ``on_outcome``.
OUTCOMES = ("completed", "failed", "retried", "deferred", "cancelled", "abandoned")


class Middleware:
    """Base middleware: override ``wrap_job`` and/or the hooks; defaults do nothing."""

    async def wrap_job(self, job: Job, call_next: CallNext) -> Any:
        """Run ``call_next(job)``; code before and after it surrounds the handler."""
        return await call_next(job)

    def on_start(self, job: Job) -> None:
        """Observe the start of an attempt, before every layer's ``wrap_job``."""

    def on_end(self, job: Job) -> None:
        """Observe the handler's return or raise (or cancellation), after every ``wrap_job``."""

    def on_outcome(
        self, job: Job, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        """Observe the end of an attempt (``completed``, ``failed``, ``retried``, ...)."""

    def on_claim(self, count: int) -> None:
        """Observe deliveries taken over from dead workers."""

    def on_dead_letter(self, count: int, queue: str) -> None:
        """Observe entries of ``queue`` dead-lettered while reading (poison pills, undecodable)."""

    def on_reconnect(self) -> None:
        """Observe a restored Redis connection."""

    def on_unwritten_outcomes(self, count: int) -> None:
        """Observe outcomes waiting because writing them failed (0 once written again)."""

    def on_worker_start(self, worker: BaseWorker) -> None:
        """Observe the worker starting."""

    def on_worker_stop(self, worker: BaseWorker) -> None:
        """Observe the worker stopping."""


class MiddlewareChain:
    """Compose middleware; the first listed is outermost. Hook failures never fail a job.

    Hooks are called in the order the middleware is listed, ``on_end`` in the reverse order.
    """

    def __init__(self, middleware: Sequence[Middleware] = ()) -> None:
        self.middleware = tuple(middleware)
        self._hooks: dict[str, list[Callable[..., None]]] = {}

    def wrap(self, handler: CallNext) -> CallNext:
        """Return ``handler`` wrapped by every middleware that defines ``wrap_job``."""
        wrapped = handler
        for layer in reversed(self.middleware):
            if _defines(layer, "wrap_job"):
                wrapped = _bind(layer, wrapped)
        return wrapped

    def emit(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every middleware defining it, logging (CRITICAL) any failure."""
        calls = self._hooks.get(hook)
        if calls is None:
            calls = self._hooks[hook] = self._defined(hook)
        for call in calls:
            try:
                call(*args)
            except Exception:
                logger.critical("middleware hook %s of %r failed", hook, call, exc_info=True)

    def _defined(self, hook: str) -> list[Callable[..., None]]:
        layers = reversed(self.middleware) if hook == "on_end" else self.middleware
        return [getattr(layer, hook) for layer in layers if _defines(layer, hook)]


def _defines(layer: Middleware, name: str) -> bool:
    """Tell whether ``layer``'s class replaces ``Middleware``'s do-nothing ``name``."""
    return getattr(type(layer), name) is not getattr(Middleware, name)


def _bind(layer: Middleware, call_next: CallNext) -> CallNext:
    async def call(job: Job) -> Any:
        return await layer.wrap_job(job, call_next)

    return call


def log_extra(job: Job, event: str, **fields: Any) -> dict[str, Any]:
    """Return ``extra`` for one log line about ``job``."""
    context = trace.get_current_span().get_span_context()
    trace_id = format(context.trace_id, "032x") if context.is_valid else job_trace_id(job)
    return {
        "event": event,
        "job_id": job.id,
        "queue": job.queue,
        "job_type": job.job_type,
        "attempt": job.attempts,
        "worker_id": job.worker_id,
        "trace_id": trace_id,
        **fields,
    }


class TracingMiddleware(Middleware):
    """Run each attempt in a CONSUMER span, child of the enqueueing span's context."""

    async def wrap_job(self, job: Job, call_next: CallNext) -> Any:
        """Continue the job's trace around the handler (straight through when tracing is off)."""
        if not tracing_enabled():
            return await call_next(job)
        with consumer_span(f"process {job.queue or ''} {job.job_type}".strip(), job):
            return await call_next(job)


class LoggingMiddleware(Middleware):
    """Log one line per job transition with job id, queue, attempt and trace id."""

    def on_start(self, job: Job) -> None:
        """Log the start of the attempt (DEBUG: the per-job path logs no INFO)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job started", extra=log_extra(job, "job.started"))

    def on_outcome(
        self, job: Job, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        """Log the outcome: ERROR with traceback for a final failure, INFO for a retry."""
        if outcome == "completed" and not logger.isEnabledFor(logging.DEBUG):
            return
        extra = log_extra(job, f"job.{outcome}", duration_seconds=round(duration, 6))
        if outcome == "failed":
            logger.error("job failed: %s", _describe(error), extra=extra, exc_info=error)
        elif outcome == "retried":
            logger.info("job will be retried: %s", _describe(error), extra=extra)
        elif outcome == "completed":
            logger.debug("job completed", extra=extra)
        else:
            logger.info("job %s", outcome, extra=extra)


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"
