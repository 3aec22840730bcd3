"""Carry trace context from the enqueueing span into the job's span.

Jobs carry W3C ``traceparent``/``tracestate`` (and baggage) under ``trace_context``. Payloads
written by the reference module carry a ``TraceCarrier`` under ``_trace`` instead; both are read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from .base import Job

#: Key under which the W3C trace context travels in payloads and job metadata.
TRACE_CONTEXT_KEY = "trace_context"
#: Key of the reference's ``TraceCarrier`` in payloads.
TRACE_CARRIER_KEY = "_trace"

_tracer = trace.get_tracer("queue_app.queue")
_stats_lock = threading.Lock()
_stats = {"injected": 0, "extracted": 0}


def _count(what: str, times: int = 1) -> None:
    with _stats_lock:
        _stats[what] += times


def get_tracing_stats() -> dict[str, int]:
    """Return how many trace contexts this process injected into and extracted from jobs."""
    with _stats_lock:
        return dict(_stats)


@dataclass(frozen=True, slots=True)
class TraceCarrier:
    """The trace a job belongs to: trace id, the enqueueing span's id and a request id."""

    #: 32 hex digits (W3C); "" when unknown.
    trace_id: str
    #: 16 hex digits of the span that enqueued the job.
    parent_span_id: str | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Return the carrier as JSON data."""
        return {
            "trace_id": self.trace_id,
            "parent_span_id": self.parent_span_id,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TraceCarrier:
        """Build a carrier from ``to_dict`` output (a missing trace id becomes "")."""
        parent, request = data.get("parent_span_id"), data.get("request_id")
        return cls(
            trace_id=str(data.get("trace_id") or ""),
            parent_span_id=str(parent) if parent else None,
            request_id=str(request) if request else None,
        )

    def context(self) -> otel_context.Context | None:
        """Return the OpenTelemetry context of the parent span, or None when ids are not W3C."""
        try:
            trace_id, span_id = int(self.trace_id, 16), int(self.parent_span_id or "", 16)
        except ValueError:
            return None
        parent = SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        if not parent.is_valid:
            return None
        return trace.set_span_in_context(NonRecordingSpan(parent))


def tracing_enabled() -> bool:
    """Tell whether an OpenTelemetry SDK (or other real tracer provider) is installed.

    Asked per job and per enqueue. While no provider is set, OpenTelemetry's
    ``get_tracer_provider()`` looks its variable up in the environment on every call (2.5 µs,
    a KeyError inside); its global and one look at the environment answer that case first.
    """
    if getattr(trace, "_TRACER_PROVIDER", _UNKNOWN) is None and not _provider_in_environment():
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


#: What ``tracing_enabled`` reads when OpenTelemetry no longer has the global it looks at.
_UNKNOWN = object()


@functools.cache
def _provider_in_environment() -> bool:
    """Tell whether the environment names a provider (loaded by OpenTelemetry on first use)."""
    return OTEL_PYTHON_TRACER_PROVIDER in os.environ


def in_span() -> bool:
    """Tell whether a valid span is current (the Redis instrumentation records its children)."""
    return trace.get_current_span().get_span_context().is_valid


def inject_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` with the current span's ``traceparent``/``tracestate`` added."""
    carrier = current_trace_carrier()
    if carrier:
        payload[TRACE_CONTEXT_KEY] = carrier
        _count("injected")
    return payload


def current_trace_carrier() -> dict[str, str] | None:
    """Return the current span's W3C context as a carrier, or None outside a valid span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def inject_into_jobs(jobs: Sequence[Job], carrier: Mapping[str, str] | None) -> None:
    """Give each job without a trace context a copy of ``carrier`` (read once per batch)."""
    if not carrier:
        return
    missing = [job for job in jobs if TRACE_CONTEXT_KEY not in job.metadata]
    for job in missing:
        job.metadata[TRACE_CONTEXT_KEY] = dict(carrier)
    if missing:
        _count("injected", len(missing))


def _context_in(*sources: Mapping[str, Any]) -> otel_context.Context | None:
    """Return the context carried by the first source that has one (W3C, then ``_trace``)."""
    for source in sources:
        carrier = source.get(TRACE_CONTEXT_KEY)
        if isinstance(carrier, dict) and carrier:
            return propagate.extract(carrier)
    for source in sources:
        legacy = source.get(TRACE_CARRIER_KEY)
        if isinstance(legacy, dict):
            return TraceCarrier.from_dict(legacy).context()
    return None


def _job_context(job: Job) -> otel_context.Context | None:
    found = _context_in(job.metadata, job.payload)
    if found is not None:
        _count("extracted")
    return found


def extract_trace_context(job: Job) -> otel_context.Context:
    """Return the OpenTelemetry context carried by ``job`` (metadata first, then payload)."""
    return _job_context(job) or otel_context.Context()


def extract_trace_carrier(payload: Mapping[str, Any]) -> TraceCarrier | None:
    """Return the trace carried by ``payload`` (``_trace`` or ``traceparent``), or None."""
    legacy = payload.get(TRACE_CARRIER_KEY)
    if isinstance(legacy, dict):
        _count("extracted")
        return TraceCarrier.from_dict(legacy)
    context = _context_in(payload)
    if context is None:
        return None
    span = trace.get_current_span(context).get_span_context()
    if not span.is_valid:
        return None
    _count("extracted")
    return TraceCarrier(format(span.trace_id, "032x"), format(span.span_id, "016x"))


def extract_and_activate(payload: Mapping[str, Any]) -> TraceCarrier | None:
    """Make the trace carried by ``payload`` current in this task; return its carrier or None.

    Spans started afterwards in the calling task are children of the enqueueing span.
    """
    carrier = extract_trace_carrier(payload)
    context = _context_in(payload) if carrier is not None else None
    if context is None:
        return None
    otel_context.attach(context)  # scoped to the calling task's context copy
    return carrier


@contextlib.contextmanager
def _activated(context: otel_context.Context | None) -> Iterator[None]:
    token = otel_context.attach(context) if context is not None else None
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)


@contextlib.contextmanager
def _span(
    name: str, kind: SpanKind, attributes: Mapping[str, str | int | bool]
) -> Iterator[trace.Span]:
    """Open a span; record an exception leaving it and mark the span as failed."""
    span = _tracer.start_span(
        name,
        kind=kind,
        attributes=attributes,
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


@contextlib.contextmanager
def consumer_span(name: str, job: Job, **extra: str | int | bool) -> Iterator[trace.Span]:
    """Open a CONSUMER span for ``job`` inside its trace context (baggage too); record failures."""
    with (
        _activated(_job_context(job)),
        _span(name, SpanKind.CONSUMER, {**job_attributes(job), **extra}) as span,
    ):
        yield span


def job_trace_id(job: Job) -> str | None:
    """Return the trace id (32 hex digits) carried by ``job``'s ``traceparent``, if any."""
    carrier = job.metadata.get(TRACE_CONTEXT_KEY) or job.payload.get(TRACE_CONTEXT_KEY)
    traceparent = carrier.get("traceparent") if isinstance(carrier, dict) else None
    parts = traceparent.split("-") if isinstance(traceparent, str) else []
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def _traced_input(args: tuple[Any, ...]) -> Job | Mapping[str, Any] | None:
    """Return the first argument that carries a job: a ``Job``, or a dict with trace context."""
    for arg in args:
        if isinstance(arg, Job):
            return arg
        payload = getattr(arg, "payload", None)
        if isinstance(payload, dict):
            return payload
        if isinstance(arg, dict) and (TRACE_CONTEXT_KEY in arg or TRACE_CARRIER_KEY in arg):
            return arg
    return None


def traced_job[**P, T](
    operation: str | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Run an async job function in a span that continues the job's trace.

    Write ``@traced_job()`` or ``@traced_job("debate.execute")``; the span is named after the
    function when no operation is given. The trace comes from the first positional argument
    that is a ``Job``, has a dict ``payload``, or is a dict carrying trace context.
    """

    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        name = operation or function.__name__

        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            found = _traced_input(args)
            if isinstance(found, Job):
                with consumer_span(name, found, **{"job.traced": True}):
                    return await function(*args, **kwargs)
            context = _context_in(found) if found is not None else None
            if context is not None:
                _count("extracted")
            with _activated(context), _span(name, SpanKind.CONSUMER, {"job.traced": True}):
                return await function(*args, **kwargs)

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


@contextlib.contextmanager
def producer_span(queue: str, job: Job) -> Iterator[None]:
    """Enqueue ``job`` inside a PRODUCER span whose context the job carries.

    A context already in the job (set by a caller on another thread) is the span's parent.
    """
    parent = extract_trace_context(job) if TRACE_CONTEXT_KEY in job.metadata else None
    with _tracer.start_as_current_span(
        f"send {queue}", context=parent, kind=SpanKind.PRODUCER
    ) as span:
        span.set_attribute("messaging.system", "redis")
        span.set_attribute("messaging.destination.name", queue)
        span.set_attribute("messaging.message.id", job.id)
        inject_trace_context(job.metadata)
        yield
