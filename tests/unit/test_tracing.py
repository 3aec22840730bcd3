"""Trace context travels from the enqueueing span into the job's span."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from queue_app.queue import Job, inject_trace_context, traced_job
from queue_app.queue.tracing import (
    TraceCarrier,
    extract_and_activate,
    extract_trace_carrier,
    get_tracing_stats,
    job_trace_id,
)


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


def test_trace_carrier_round_trips_and_defaults_a_missing_trace_id() -> None:
    carrier = TraceCarrier("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "req-1")
    assert TraceCarrier.from_dict(carrier.to_dict()) == carrier
    assert TraceCarrier.from_dict({}) == TraceCarrier("", None, None)


def test_extract_trace_carrier_reads_both_forms() -> None:
    assert extract_trace_carrier({}) is None
    assert extract_trace_carrier({"_trace": "not a dict"}) is None
    legacy = {"_trace": {"trace_id": "abc", "parent_span_id": None, "request_id": "r"}}
    assert extract_trace_carrier(legacy) == TraceCarrier("abc", None, "r")
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    w3c = {"trace_context": {"traceparent": traceparent}}
    assert extract_trace_carrier(w3c) == TraceCarrier(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    )


async def test_extract_and_activate_makes_the_jobs_trace_current(
    spans: InMemorySpanExporter,
) -> None:
    parent = "00f067aa0ba902b7"
    payload = {"_trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "parent_span_id": parent}}

    async def in_task() -> tuple[object, int]:
        carrier = extract_and_activate(payload)
        with trace.get_tracer("test").start_as_current_span("child") as child:
            return carrier, child.get_span_context().trace_id

    carrier, trace_id = await asyncio.create_task(in_task())
    assert carrier == TraceCarrier("4bf92f3577b34da6a3ce929d0e0e4736", parent)
    assert format(trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    [child] = [s for s in spans.get_finished_spans() if s.name == "child"]
    assert child.parent is not None and format(child.parent.span_id, "016x") == parent
    assert extract_and_activate({"nothing": 1}) is None


async def test_tracing_stats_count_injections_and_extractions(
    spans: InMemorySpanExporter,
) -> None:
    before = get_tracing_stats()
    with trace.get_tracer("test").start_as_current_span("producer"):
        payload = inject_trace_context({})

    @traced_job()
    async def handle(job: Job) -> None:
        return None

    await handle(Job(payload=payload))
    after = get_tracing_stats()
    assert after["injected"] == before["injected"] + 1
    assert after["extracted"] == before["extracted"] + 1
    [span] = [s for s in spans.get_finished_spans() if s.name == "handle"]
    assert span.attributes["job.traced"] is True


async def test_traced_job_finds_the_trace_in_a_payload_dict(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("producer") as producer:
        payload = inject_trace_context({"debate_id": "d-1"})

    @traced_job("explain")
    async def explain(data: dict, extra: int) -> int:
        return trace.get_current_span().get_span_context().trace_id

    assert await explain(payload, 1) == producer.get_span_context().trace_id


def enabled_in_fresh_interpreter(code: str, **environment: str) -> list[bool]:
    """Run ``code`` in a new interpreter; return what each ``check()`` it called answered."""
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from queue_app.queue.tracing import tracing_enabled\n"
        "answers = []\n"
        "def check():\n    answers.append(tracing_enabled())\n"
        f"{code}\nprint(answers)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OTEL_PYTHON_TRACER_PROVIDER"}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, text=True, env=env
    )
    return [word == "True" for word in done.stdout.strip(" []\n").split(", ")]


def test_tracing_is_enabled_from_the_moment_a_provider_is_set() -> None:
    answers = enabled_in_fresh_interpreter(
        "check(); check()\ntrace.set_tracer_provider(TracerProvider())\ncheck(); check()"
    )

    assert answers == [False, False, True, True]


def test_tracing_is_enabled_by_a_provider_the_environment_names() -> None:
    answers = enabled_in_fresh_interpreter(
        "check()", OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider"
    )

    assert answers == [True]
