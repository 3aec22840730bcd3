"""Carry W3C trace context from the enqueueing span into the job's span."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .base import Job

#: Key under which the trace context travels in payloads and job metadata.
TRACE_CONTEXT_KEY = "trace_context"

_tracer = trace.get_tracer("queue_app.queue")

T = TypeVar("T")


def inject_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` with the current span's ``traceparent``/``tracestate`` added."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:
        payload[TRACE_CONTEXT_KEY] = carrier
    return payload


def extract_trace_context(job: Job) -> otel_context.Context:
    """Return the OpenTelemetry context carried by ``job`` (metadata first, then payload)."""
    carrier = job.metadata.get(TRACE_CONTEXT_KEY) or job.payload.get(TRACE_CONTEXT_KEY) or {}
    return propagate.extract(carrier if isinstance(carrier, dict) else {})


def traced_job(
    name: str,
) -> Callable[[Callable[[Job], Awaitable[T]]], Callable[[Job], Awaitable[T]]]:
    """Run ``async def handler(job)`` in a CONSUMER span that continues the job's trace."""

    def decorate(handler: Callable[[Job], Awaitable[T]]) -> Callable[[Job], Awaitable[T]]:
        @functools.wraps(handler)
        async def wrapper(job: Job) -> T:
            parent = extract_trace_context(job)
            with _tracer.start_as_current_span(
                name, context=parent, kind=SpanKind.CONSUMER, attributes=job_attributes(job)
            ) as span:
                try:
                    return await handler(job)
                except BaseException as error:
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                    raise

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
