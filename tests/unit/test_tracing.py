"""Trace context travels from the enqueueing span into the job's span."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from queue_app.queue import Job, inject_trace_context, traced_job
from queue_app.queue.tracing import job_trace_id


def test_inject_without_active_span_adds_nothing() -> None:
    assert inject_trace_context({"a": 1}) == {"a": 1}


async def test_traced_job_continues_the_enqueueing_trace(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("http request") as parent:
        payload = inject_trace_context({"debate_id": "d-1"})
    assert payload["trace_context"]["traceparent"].startswith("00-")

    @traced_job("debate.execute")
    async def handler(job: Job) -> str:
        return trace.get_current_span().get_span_context().trace_id

    trace_id = await handler(Job(payload=payload, queue="debates"))
    parent_context = parent.get_span_context()
    assert trace_id == parent_context.trace_id
    [span] = [s for s in spans.get_finished_spans() if s.name == "debate.execute"]
    assert span.parent is not None and span.parent.span_id == parent_context.span_id
    assert span.kind is SpanKind.CONSUMER
    assert span.attributes["messaging.destination.name"] == "debates"


async def test_traced_job_records_failure(spans: InMemorySpanExporter) -> None:
    @traced_job("boom")
    async def handler(job: Job) -> None:
        raise RuntimeError("exploded")

    with pytest.raises(RuntimeError):
        await handler(Job(payload={}))
    [span] = [s for s in spans.get_finished_spans() if s.name == "boom"]
    assert not span.status.is_ok
    assert span.events[0].name == "exception"


def test_job_trace_id_reads_the_traceparent() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    job = Job(payload={}, metadata={"trace_context": {"traceparent": traceparent}})
    assert job_trace_id(job) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert job_trace_id(Job(payload={})) is None
    assert job_trace_id(Job(payload={}, metadata={"trace_context": {"traceparent": "x"}})) is None


async def test_consumer_span_carries_the_producers_baggage(spans: InMemorySpanExporter) -> None:
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with trace.get_tracer("test").start_as_current_span("producer"):
            payload = inject_trace_context({})
    finally:
        context.detach(token)
    assert "baggage" in payload["trace_context"]

    @traced_job("consume")
    async def handler(job: Job) -> object:
        return baggage.get_baggage("tenant")

    assert await handler(Job(payload=payload)) == "acme"
