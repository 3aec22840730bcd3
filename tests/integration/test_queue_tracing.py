"""Trace context across enqueue: the PRODUCER span and the job's traceparent."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from queue_app.queue import Job, QueueConfig, create_redis_queue, inject_trace_context


async def test_enqueue_producer_span_continues_context_already_in_job(
    spans: InMemorySpanExporter, redis_url: str
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request on another thread") as request:
        job = Job(payload={})
        inject_trace_context(job.metadata)
    queue = await create_redis_queue(consumer_name="p", config=QueueConfig(redis_url=redis_url))
    try:
        await queue.enqueue(job)
    finally:
        await queue.close()
    [producer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    traceparent = job.metadata["trace_context"]["traceparent"]
    assert traceparent.split("-")[2] == format(producer.context.span_id, "016x")
