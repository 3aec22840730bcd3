"""Carry W3C trace context from the enqueueing span into the job's span."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .base import Job

#: Key under which the trace context travels in payloads and job metadata.
TRACE_CONTEXT_KEY = "trace_context"

_tracer = trace.get_tracer("queue_app.queue")

T = TypeVar("T")


def tracing_enabled() -> bool:
    """Tell whether an OpenTelemetry SDK (or other real tracer provider) is installed."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def inject_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` with the current span's ``traceparent``/``tracestate`` added."""
    if not trace.get_current_span().get_span_context().is_valid:
        return payload
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:
        payload[TRACE_CONTEXT_KEY] = carrier
    return payload


def extract_trace_context(job: Job) -> otel_context.Context:
    """Return the OpenTelemetry context carried by ``job`` (metadata first, then payload)."""
    carrier = job.metadata.get(TRACE_CONTEXT_KEY) or job.payload.get(TRACE_CONTEXT_KEY) or {}
    return propagate.extract(carrier if isinstance(carrier, dict) else {})


@contextlib.contextmanager
def consumer_span(name: str, job: Job) -> Iterator[trace.Span]:
    """Open a CONSUMER span for ``job`` inside its trace context (baggage too); record failures."""
    carrier = job.metadata.get(TRACE_CONTEXT_KEY) or job.payload.get(TRACE_CONTEXT_KEY)
    token = otel_context.attach(propagate.extract(carrier)) if isinstance(carrier, dict) else None
    try:
        span = _tracer.start_span(
            name,
            kind=SpanKind.CONSUMER,
            attributes=job_attributes(job),
            record_exception=False,
            set_status_on_exception=False,
        )
        with trace.use_span(span, end_on_exit=True):
            try:
                yield span
            except BaseException as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
    finally:
        if token is not None:
            otel_context.detach(token)


def job_trace_id(job: Job) -> str | None:
    """Return the trace id (32 hex digits) carried by ``job``'s ``traceparent``, if any."""
    carrier = job.metadata.get(TRACE_CONTEXT_KEY) or job.payload.get(TRACE_CONTEXT_KEY)
    traceparent = carrier.get("traceparent") if isinstance(carrier, dict) else None
    parts = traceparent.split("-") if isinstance(traceparent, str) else []
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def traced_job(
    name: str,
) -> Callable[[Callable[[Job], Awaitable[T]]], Callable[[Job], Awaitable[T]]]:
    """Run ``async def handler(job)`` in a CONSUMER span that continues the job's trace."""

    def decorate(handler: Callable[[Job], Awaitable[T]]) -> Callable[[Job], Awaitable[T]]:
        @functools.wraps(handler)
        async def wrapper(job: Job) -> T:
            with consumer_span(name, job):
                return await handler(job)

        return wrapper

    return decorate


def job_attributes(job: Job) -> dict[str, str | int]:
    """Return messaging semantic-convention attributes describing ``job``."""
    return {
        "messaging.system": "redis",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue or "",
        "messaging.message.id": job.id,
        "messaging.consumer.group.name": str(job.metadata.get("consumer_group", "")),
        "aragora.job.type": job.job_type,
        "aragora.job.attempt": job.attempts,
    }
